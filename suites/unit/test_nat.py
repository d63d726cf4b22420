"""SR services on synthetic packets: SNAT, DNAT, 1:1, hairpin, ICMP errors,
conntrack states and timeouts, firewall rules, exhaustion."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.conftest import EDGE_YAML, Rig

H1, H2, H3 = "02:00:00:00:00:11", "02:00:00:00:00:12", "02:00:00:00:00:13"
EXT = "02:00:00:00:00:99"
WEB_GW, APP_GW, UP_GW = "02:00:00:00:10:01", "02:00:00:00:20:01", "02:00:00:00:cb:01"
POOL = ("203.0.113.64", "203.0.113.65")

NAT_YAML = EDGE_YAML.replace(
    """        - {instance: provider, ip: 203.0.113.1/24, mac: "02:00:00:00:cb:01"}
""",
    """        - {instance: provider, ip: 203.0.113.1/24, mac: "02:00:00:00:cb:01"}
      routes: [{prefix: 0.0.0.0/0, via: 203.0.113.10}]
      nat:
        snat: [{name: tenants, source: 172.16.0.0/16, pool: [203.0.113.64, 203.0.113.65]}]
        dnat: [{name: web-8080, public: 203.0.113.80, proto: tcp, port: 8080, to: 172.16.20.13, to_port: 80}]
        one_to_one: [{name: t2-public, public: 203.0.113.90, private: 172.16.10.12}]
        max_sessions: MAXSESS
        timeouts: {udp: 30}
      firewall:
        rules: [{name: no-telnet, action: reject, direction: out, proto: tcp, dport: 23}]
""",
)


def nat_rig(max_sessions: int = 1000) -> Rig:
    return learn_neighbours(Rig(NAT_YAML.replace("MAXSESS", str(max_sessions))))


def learn_neighbours(rig: Rig) -> Rig:
    """Neighbours: ext1 on the uplink; t1, t2 (web, VLAN 10) and t3 (app, VLAN 20) on the trunk."""
    rig.send(
        "uplink",
        bytes(Ether(src=EXT, dst=UP_GW) / ARP(op=2, hwsrc=EXT, psrc="203.0.113.10", hwdst=UP_GW, pdst="203.0.113.1")),
    )
    for mac, ip, gw, vlan in (
        (H1, "172.16.10.11", "172.16.10.1", 10),
        (H2, "172.16.10.12", "172.16.10.1", 10),
        (H3, "172.16.20.13", "172.16.20.1", 20),
    ):
        rig.send(
            "trunk",
            bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=vlan) / ARP(op=1, hwsrc=mac, psrc=ip, pdst=gw)),
        )
    rig.take("trunk")
    rig.take("uplink")
    return rig


@pytest.fixture
def nrig() -> Rig:
    return nat_rig()


def out_frame(l3, src=H1, vlan=10, gw=WEB_GW):
    return bytes(Ether(src=src, dst=gw) / Dot1Q(vlan=vlan) / l3)


def in_frame(l3):
    return bytes(Ether(src=EXT, dst=UP_GW) / l3)


def one(frames):
    assert len(frames) == 1, [Ether(f).summary() for f in frames]
    return Ether(frames[0])


def checksums_valid(pkt) -> bool:
    ip = IP(bytes(pkt[IP]))
    raw = bytes(ip)
    ip2 = IP(raw)
    del ip2.chksum
    for layer in (TCP, UDP, ICMP):
        if layer in ip2:
            del ip2[layer].chksum
    return bytes(IP(bytes(ip2))) == raw


def test_snat_udp_out_and_back(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=5555, dport=9999) / b"q"))
    out = one(nrig.take("uplink"))
    assert out[IP].src in POOL and out[UDP].sport == 5555, "source translated, port preserved"
    assert checksums_valid(out)
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst=out[IP].src) / UDP(sport=9999, dport=5555) / b"a"))
    back = one(nrig.take("trunk"))
    assert back[IP].dst == "172.16.10.11" and back[UDP].dport == 5555 and back[Dot1Q].vlan == 10
    assert checksums_valid(back)
    (entry,) = nrig.handle({"cmd": "show", "what": "conntrack"})["result"]["t1"]["entries"]
    assert entry["state"] == "established" and entry["packets"] == [1, 1]


def test_two_tenants_same_source_port_get_distinct_public_endpoints(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=5555, dport=9999)))
    nrig.send(
        "trunk",
        out_frame(IP(src="172.16.20.13", dst="203.0.113.10") / UDP(sport=5555, dport=9999), src=H3, vlan=20, gw=APP_GW),
    )
    a, b = (Ether(f) for f in nrig.take("uplink"))
    assert (a[IP].src, a[UDP].sport) != (b[IP].src, b[UDP].sport)
    for pkt, host, mac in ((a, "172.16.10.11", H1), (b, "172.16.20.13", H3)):
        nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst=pkt[IP].src) / UDP(sport=9999, dport=pkt[UDP].sport)))
        back = one(nrig.take("trunk"))
        assert back[IP].dst == host and back.dst == mac and back[UDP].dport == 5555


def test_icmp_echo_identifier_translated(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / ICMP(id=77, seq=1)))
    nrig.send(
        "trunk", out_frame(IP(src="172.16.20.13", dst="203.0.113.10") / ICMP(id=77, seq=1), src=H3, vlan=20, gw=APP_GW)
    )
    a, b = (Ether(f) for f in nrig.take("uplink"))
    assert (a[IP].src, a[ICMP].id) != (b[IP].src, b[ICMP].id)
    assert checksums_valid(a) and checksums_valid(b)
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst=b[IP].src) / ICMP(type=0, id=b[ICMP].id, seq=1)))
    back = one(nrig.take("trunk"))
    assert back[IP].dst == "172.16.20.13" and back[ICMP].id == 77 and checksums_valid(back)


def test_dnat_port_forward_both_directions(nrig):
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.80") / TCP(sport=40000, dport=8080, flags="S")))
    syn = one(nrig.take("trunk"))
    assert (
        syn[IP].dst == "172.16.20.13"
        and syn[TCP].dport == 80
        and syn[Dot1Q].vlan == 20
        and syn[IP].src == "203.0.113.10"
    )
    assert checksums_valid(syn)
    nrig.send(
        "trunk",
        out_frame(
            IP(src="172.16.20.13", dst="203.0.113.10") / TCP(sport=80, dport=40000, flags="SA"),
            src=H3,
            vlan=20,
            gw=APP_GW,
        ),
    )
    synack = one(nrig.take("uplink"))
    assert synack[IP].src == "203.0.113.80" and synack[TCP].sport == 8080 and checksums_valid(synack)


def test_one_to_one_both_directions(nrig):
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.90") / ICMP(id=5)))
    req = one(nrig.take("trunk"))
    assert req[IP].dst == "172.16.10.12" and req.dst == H2
    nrig.send("trunk", out_frame(IP(src="172.16.10.12", dst="203.0.113.10") / UDP(sport=7000, dport=53), src=H2))
    out = one(nrig.take("uplink"))
    assert out[IP].src == "203.0.113.90" and out[UDP].sport == 7000


def test_hairpin_to_a_dnat_address(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.80") / TCP(sport=41000, dport=8080, flags="S")))
    syn = one(nrig.take("trunk"))
    assert syn[IP].dst == "172.16.20.13" and syn[TCP].dport == 80
    assert syn[IP].src in POOL, "hairpin must SNAT so the reply comes back through the SR"
    nrig.send(
        "trunk",
        out_frame(
            IP(src="172.16.20.13", dst=syn[IP].src) / TCP(sport=80, dport=syn[TCP].sport, flags="SA"),
            src=H3,
            vlan=20,
            gw=APP_GW,
        ),
    )
    back = one(nrig.take("trunk"))
    assert back[IP].src == "203.0.113.80" and back[TCP].sport == 8080
    assert back[IP].dst == "172.16.10.11" and back[TCP].dport == 41000 and checksums_valid(back)


def test_icmp_error_translated_back_through_snat(nrig):
    nrig.send(
        "trunk",
        out_frame(IP(src="172.16.10.11", dst="198.51.100.10", ttl=3) / UDP(sport=33434, dport=33435) / b"probe"),
    )
    out = one(nrig.take("uplink"))
    quoted = bytes(out[IP])
    # The provider router beyond answers "time exceeded" to the public address.
    err = IP(src="203.0.113.10", dst=out[IP].src) / ICMP(type=11, code=0) / quoted
    nrig.send("uplink", in_frame(err))
    back = one(nrig.take("trunk"))
    assert back[IP].dst == "172.16.10.11" and back[IP].src == "203.0.113.10" and back[ICMP].type == 11
    assert back[IPerror].src == "172.16.10.11" and back[UDPerror].sport == 33434
    assert checksums_valid(back)
    inner = IP(bytes(back[IPerror]))
    assert (
        inner.chksum
        == IP(
            bytes(
                IP(
                    src=inner.src,
                    dst=inner.dst,
                    ttl=inner.ttl,
                    proto=inner.proto,
                    id=inner.id,
                    len=inner.len,
                    flags=inner.flags,
                )
            )
        ).chksum
    )
    assert nrig.handle({"cmd": "show", "what": "conntrack"})["result"]["t1"]["related"] == 1


def test_unsolicited_inbound_dropped_and_counted(nrig):
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="172.16.10.11") / UDP(sport=1, dport=2)))
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.64") / UDP(sport=1, dport=2)))
    assert nrig.take("trunk") == []
    assert nrig.drops() == {"sr/fw-unsolicited": 1, "sr/nat-no-session": 1}


def test_tcp_out_of_state_is_invalid(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / TCP(sport=1234, dport=80, flags="A")))
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.80") / TCP(sport=1, dport=8080, flags="A")))
    assert nrig.take("uplink") == [] and nrig.take("trunk") == []
    assert nrig.drops() == {"sr/ct-invalid": 2}


def test_tcp_states(nrig):
    def o(flags):
        nrig.send(
            "trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / TCP(sport=1234, dport=80, flags=flags))
        )
        return one(nrig.take("uplink"))

    def i(flags, pub):
        nrig.send(
            "uplink",
            in_frame(IP(src="203.0.113.10", dst=pub[IP].src) / TCP(sport=80, dport=pub[TCP].sport, flags=flags)),
        )
        one(nrig.take("trunk"))

    def state():
        (e,) = nrig.handle({"cmd": "show", "what": "conntrack"})["result"]["t1"]["entries"]
        return e["state"]

    pub = o("S")
    assert state() == "syn-sent"
    i("SA", pub)
    assert state() == "syn-recv"
    o("A")
    assert state() == "established"
    o("FA")
    assert state() == "fin-wait"
    i("FA", pub)
    assert state() == "time-wait"


def test_firewall_reject_sends_admin_prohibited(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / TCP(sport=1234, dport=23, flags="S")))
    assert nrig.take("uplink") == []
    err = one(nrig.take("trunk"))
    assert err[ICMP].type == 3 and err[ICMP].code == 13 and err[IP].dst == "172.16.10.11"
    assert nrig.drops() == {"sr/fw-reject": 1}
    fw = nrig.handle({"cmd": "show", "what": "firewall"})["result"]["t1"]
    assert fw["rules"][0]["hits"] == 1


def test_rule_added_at_runtime_blocks_the_next_packet_of_a_running_flow(nrig):
    pkt = IP(src="172.16.10.11", dst="203.0.113.10") / ICMP(id=9)
    nrig.send("trunk", out_frame(pkt))
    assert len(nrig.take("uplink")) == 1
    resp = nrig.handle(
        {
            "cmd": "firewall",
            "action": "add",
            "router": "t1",
            "position": 0,
            "rule": {"name": "block-ext", "action": "drop", "dst": "203.0.113.10/32"},
        },
    )
    assert resp["ok"], resp
    nrig.send("trunk", out_frame(pkt))
    assert nrig.take("uplink") == []
    assert nrig.drops() == {"sr/fw-drop": 1}
    assert nrig.handle({"cmd": "firewall", "action": "del", "router": "t1", "name": "block-ext"})["ok"]
    nrig.send("trunk", out_frame(pkt))
    assert len(nrig.take("uplink")) == 1


def test_nat_rule_added_and_removed_at_runtime(nrig):
    resp = nrig.handle(
        {
            "cmd": "nat",
            "action": "add",
            "router": "t1",
            "kind": "dnat",
            "rule": {
                "name": "ssh",
                "public": "203.0.113.81",
                "proto": "tcp",
                "port": 2222,
                "to": "172.16.10.11",
                "to_port": 22,
            },
        },
    )
    assert resp["ok"], resp
    nrig.send(
        "uplink",
        bytes(Ether(src=EXT, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=EXT, psrc="203.0.113.10", pdst="203.0.113.81")),
    )
    arp = one(nrig.take("uplink"))
    assert arp[ARP].psrc == "203.0.113.81" and arp[ARP].hwsrc == UP_GW
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.81") / TCP(sport=5, dport=2222, flags="S")))
    assert one(nrig.take("trunk"))[TCP].dport == 22
    assert nrig.handle({"cmd": "nat", "action": "del", "router": "t1", "name": "ssh"})["ok"]
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst="203.0.113.81") / TCP(sport=5, dport=2222, flags="A")))
    assert nrig.take("trunk") == []


def test_pool_exhaustion_is_counted():
    rig = nat_rig()
    assert rig.handle(
        {
            "cmd": "nat",
            "action": "add",
            "router": "t1",
            "kind": "snat",
            "rule": {"name": "tiny", "source": "172.16.10.11/32", "pool": ["203.0.113.70"], "ports": "5000-5001"},
        },
    )["ok"]
    for sport in (1, 2, 3):
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=sport, dport=53)))
    outs = [Ether(f) for f in rig.take("uplink")]
    assert sorted(o[UDP].sport for o in outs) == [5000, 5001] and {o[IP].src for o in outs} == {"203.0.113.70"}
    assert rig.drops() == {"sr/nat-pool-exhausted": 1}
    pools = rig.handle({"cmd": "show", "what": "nat"})["result"]["t1"]["pools"]
    assert next(p for p in pools if p["rule"] == "tiny")["used"]["udp"] == 2


def test_session_table_limit():
    rig = nat_rig(max_sessions=2)
    for sport in (1, 2, 3):
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=sport, dport=53)))
    assert len(rig.take("uplink")) == 2
    assert rig.drops() == {"sr/nat-table-full": 1}


def test_udp_session_times_out_and_frees_its_port(nrig):
    nrig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=5555, dport=53)))
    out = one(nrig.take("uplink"))
    nrig.dp.sweep(time.monotonic() + 31)
    assert nrig.handle({"cmd": "show", "what": "conntrack"})["result"]["t1"]["count"] == 0
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst=out[IP].src) / UDP(sport=53, dport=5555)))
    assert nrig.take("trunk") == []
    assert nrig.drops() == {"sr/nat-no-session": 1}


def test_bad_runtime_rules_are_refused(nrig):
    bad = [
        {
            "cmd": "nat",
            "action": "add",
            "router": "t1",
            "kind": "dnat",
            "rule": {"public": "203.0.113.80", "proto": "gre", "port": 1, "to": "172.16.10.11"},
        },
        {
            "cmd": "nat",
            "action": "add",
            "router": "t1",
            "kind": "snat",
            "rule": {"source": "172.16.0.0/16", "pool": "x"},
        },
        {"cmd": "nat", "action": "add", "router": "t9", "kind": "snat", "rule": {}},
        {"cmd": "nat", "action": "del", "router": "t1", "name": "nope"},
        {"cmd": "firewall", "action": "add", "router": "t1", "rule": {"action": "maybe"}},
        {"cmd": "firewall", "action": "add", "router": "t1", "rule": {"action": "drop", "proto": "icmp", "dport": 5}},
        {"cmd": "firewall", "action": "add", "router": "t1", "rule": {"action": "drop", "name": "no-telnet"}},
    ]
    for req in bad:
        resp = nrig.handle(req)
        assert resp["ok"] is False, req
    assert nrig.control.errors == len(bad)


def test_expiry_runs_in_slices_and_finishes():
    """The loop's sweep expires at most a slice of each table at a time (a second's closed
    connections expiring together stalled the loop for 100+ ms) and says when more are due."""
    from gateway.datapath import SWEEP_SLICE

    rig = nat_rig(max_sessions=2000)
    n = SWEEP_SLICE + 40
    for sport in range(1000, 1000 + n):
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=sport, dport=53)))
    assert len(rig.take("uplink")) == n
    ct = rig.dp.model.router("t1", "sr").services.ct
    assert len(ct) == n and len(rig.dp.cache) == n
    later = time.monotonic() + 1000
    assert rig.dp.sweep(later) is True, "a full slice: more are due"
    assert len(ct) == 40 and len(rig.dp.cache) == 40
    assert rig.dp.sweep(later) is False
    assert len(ct) == 0 and len(rig.dp.cache) == 0 and ct.expired == n


def test_the_table_counts_what_it_holds_through_every_change():
    """The connection count (asked before every new connection: the quota) is kept as
    entries come and go, not recounted; it must match the entries through each way in
    and out: a new connection, one a peer replicated, a removal, an expiry, a flush."""
    from gateway.epoch import Epoch
    from gateway.l4 import FlowTuple
    from gateway.services.conntrack import ConnTable

    ct = ConnTable(100, Epoch())

    def pair(port):
        return FlowTuple(17, 1, port, 2, 53), FlowTuple(17, 2, 53, 3, port)

    def held():
        assert len(ct) == len(ct.conns())
        return len(ct)

    conns = [ct.add(*pair(p), 0.0, False) for p in range(1000, 1010)]
    assert held() == 10
    ct.install(*pair(2000), 0.0, False, "established", "udp")  # replicated by a peer
    ct.install(*pair(2000), 1.0, False, "established", "udp")  # ... updated in place
    assert held() == 11
    ct.install(*pair(1000), 0.0, False, "established", "udp")  # replaces ours: the peer's wins
    assert held() == 11
    ct.remove(conns[1])
    ct.remove(conns[1])  # (twice: counted once)
    assert held() == 10
    ct.touch(conns[2], 1, 64, 5.0)
    assert ct.expire(1000.0, limit=3) == 3 and held() == 7
    ct.flush()
    assert held() == 0


class _CountingSet(set):
    looked = 0

    def __contains__(self, item):
        _CountingSet.looked += 1
        return super().__contains__(item)


def test_an_exhausted_pool_refuses_at_once():
    """Once every port of an address is in use, a new connection is refused without a walk
    over the range (a walk was 64k lookups, 2.6 ms, for every new flow: a stream of them at an
    exhausted pool stalled the datapath); a port given back is handed out again."""
    from gateway.services.nat import Ports

    used = _CountingSet(range(1000, 2000))
    ports = Ports(1000, 1999)
    _CountingSet.looked = 0
    assert [ports.take(used, frozenset()) for _ in range(500)] == [None] * 500
    assert _CountingSet.looked <= 1000 + 500, "each port looked at once, not once per attempt"
    used.discard(1500)
    ports.freed.append(1500)
    assert ports.take(used, frozenset()) == 1500 and ports.take(used, frozenset()) is None


def test_a_port_given_back_is_handed_out_again_but_never_twice():
    from gateway.epoch import Epoch
    from gateway.services.nat import Nat
    from gateway.services.rules import NatConfig

    nat = Nat(NatConfig(), Epoch())
    ip = 0xC6336464
    assert [nat._take(17, ip, 1, 1000, 1003) for _ in range(5)] == [1000, 1001, 1002, 1003, None]
    nat.unreserve(17, ip, 1001)
    nat.unreserve(17, ip, 1003)
    assert nat._take(17, ip, 1003, 1000, 1003) == 1003, "its own port, free again: kept"
    assert nat._take(17, ip, 1, 1000, 1003) == 1001, "the port given back, listed"
    assert nat._take(17, ip, 1, 1000, 1003) is None, "1003 was listed too, but is taken: not twice"


@settings(max_examples=400)
@given(st.lists(st.tuples(st.sampled_from(["take", "take", "free", "hold"]), st.integers(990, 1010)), max_size=120))
def test_port_allocation_matches_a_model(ops):
    """Any sequence of new connections (each wanting a port), ports given back and ports a peer
    holds: a port is never handed out twice or outside the range, and a connection is refused
    only when every port of the range is in use; the tenant's own port is kept when free."""
    from gateway.epoch import Epoch
    from gateway.services.nat import Nat
    from gateway.services.rules import NatConfig

    nat = Nat(NatConfig(), Epoch())
    lo, hi, ip = 995, 1004, 0xC6336464
    held: set[int] = set()
    for op, port in ops:
        if op == "take":
            got = nat._take(17, ip, port, lo, hi)
            if got is None:
                assert held >= set(range(lo, hi + 1)), "refused with a port free"
            else:
                assert lo <= got <= hi and got not in held
                if lo <= port <= hi and port not in held:
                    assert got == port, "the tenant's own port was free"
                held.add(got)
        elif op == "free":
            if port in held:
                nat.unreserve(17, ip, port)
                held.discard(port)
        else:
            nat.hold(17, ip, port)
            held.add(port)


def test_connections_and_sessions_are_shown_in_pages():
    """``show conntrack`` and ``show nat`` answer a page (``offset``, ``limit``, at most 4096;
    0: the counts alone), oldest first, with the whole table's counts: listing a million
    connections at once took seconds, the datapath stalled meanwhile."""
    rig = nat_rig(max_sessions=2000)
    for sport in range(1000, 1010):
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=sport, dport=53)))

    def show(what, **page):
        resp = rig.handle({"cmd": "show", "what": what, "router": "t1", **page})
        assert resp["ok"], resp
        return resp["result"]["t1"]

    ct = show("conntrack", offset=2, limit=3)
    assert ct["count"] == 10 and [e["orig"].split(" > ")[0] for e in ct["entries"]] == [
        f"172.16.10.11:{p}" for p in (1002, 1003, 1004)
    ]
    assert show("conntrack", limit=0)["entries"] == [] and show("conntrack", limit=0)["count"] == 10
    assert len(show("conntrack")["entries"]) == 10, "no page asked for: the first 4096"
    nat = show("nat", offset=8)
    assert nat["session_count"] == 10 and len(nat["sessions"]) == 2
    bad = rig.handle({"cmd": "show", "what": "conntrack", "limit": -1})
    assert not bad["ok"] and "limit" in bad["error"]


def test_a_connections_tuples_share_their_objects():
    """Compiled as interpreted, a connection holds no int objects of its own where one exists:
    its tuples' ports are the shared ones (``l4.PORTS``), its reply's source the packet's
    destination, its reply's destination the pool address every connection names, and the
    NAT's port books hold the shared ports too (each a new int would cost a connection 32
    bytes: the compiler boxes an int anew wherever one leaves native code)."""
    from gateway.l4 import PORTS

    rig = nat_rig()
    for sport in (40001, 40002):
        tcp = TCP(sport=sport, dport=8443, flags="S")
        rig.send("trunk", out_frame(IP(src="172.16.10.11", dst="203.0.113.10") / tcp))
    assert len(rig.take("uplink")) == 2
    sr = rig.dp.model.router("t1", "sr").services
    one, two = sr.ct.conns()
    for conn in (one, two):
        for t in (conn.orig, conn.reply, conn.target(0), conn.target(1), conn.orig.inverse()):
            assert t.sport is PORTS[t.sport] and t.dport is PORTS[t.dport], t
        assert conn.reply.src is conn.orig.dst
        assert conn.orig.dport == 8443 and conn.reply.dst != conn.orig.src  # (translated)
    assert one.reply.dst is two.reply.dst, "the pool address: one object"
    for ports in sr.nat._used.values():
        assert all(p is PORTS[p] for p in ports)


def test_conntrack_flush_ends_connections_and_their_sessions(nrig):
    """``conntrack flush``: the connection and its NAT session are gone (the reply finds none,
    the drop is counted), and the same flow out again is a new connection."""
    udp = IP(src="172.16.10.11", dst="203.0.113.10") / UDP(sport=5555, dport=9999) / b"q"
    nrig.send("trunk", out_frame(udp))
    out = one(nrig.take("uplink"))
    assert nrig.handle({"cmd": "conntrack", "action": "flush"})["result"] == {"flushed": {"t1": 1}}
    shown = nrig.handle({"cmd": "show", "what": "conntrack"})["result"]["t1"]
    assert shown["count"] == 0 and shown["entries"] == []
    nrig.send("uplink", in_frame(IP(src="203.0.113.10", dst=out[IP].src) / UDP(sport=9999, dport=5555) / b"a"))
    assert nrig.take("trunk") == [] and nrig.drops() == {"sr/nat-no-session": 1}
    nrig.send("trunk", out_frame(udp))  # (a new connection: the cache entry of the old one is stale)
    again = one(nrig.take("uplink"))
    assert (again[IP].src, again[UDP].sport) == (out[IP].src, out[UDP].sport)
    assert nrig.handle({"cmd": "show", "what": "conntrack"})["result"]["t1"]["count"] == 1
    bad = nrig.handle({"cmd": "conntrack", "action": "drop"})
    assert bad["ok"] is False and "choose flush" in bad["error"]
    assert nrig.handle({"cmd": "conntrack", "action": "flush", "router": "nope"})["ok"] is False
