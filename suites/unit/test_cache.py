"""The datapath cache: hits and misses, invalidation, bounds, and equivalence
with the slow path (byte-identical output, identical state) under random
traffic and random table changes."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether

from suites.unit.test_nat import APP_GW, EXT, H1, H2, H3, UP_GW, WEB_GW, nat_rig

# (host MAC, IP, VLAN, gateway MAC) for tenant senders; None VLAN = the uplink.
SENDERS = {
    "t1": (H1, "172.16.10.11", 10, WEB_GW),
    "t2": (H2, "172.16.10.12", 10, WEB_GW),
    "t3": (H3, "172.16.20.13", 20, APP_GW),
    "ext": (EXT, "203.0.113.10", None, UP_GW),
}
DESTS = [
    "172.16.10.11",
    "172.16.10.12",
    "172.16.20.13",
    "203.0.113.10",
    "198.51.100.7",
    "203.0.113.80",
    "203.0.113.90",
    "203.0.113.64",
    "172.16.10.1",
    "10.50.1.1",
]


def frame(sender: str, dst: str, l4, ttl: int = 64, bad_csum: bool = False) -> bytes:
    mac, ip, vlan, gw = SENDERS[sender]
    eth = Ether(src=mac, dst=gw)
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    raw = bytearray(bytes(eth / IP(src=ip, dst=dst, ttl=ttl) / l4))
    if bad_csum:
        raw[-len(bytes(IP(src=ip, dst=dst, ttl=ttl) / l4)) + 10] ^= 0x5A
    return bytes(raw)


def send(rig, sender: str, data: bytes):
    return rig.send("uplink" if SENDERS[sender][2] is None else "trunk", data)


def cached_and_plain(max_sessions: int = 1000):
    a = nat_rig(max_sessions)
    b = nat_rig(max_sessions)
    b.dp.cache.enabled = False
    return a, b


# -- behaviour -----------------------------------------------------------------------------
def test_first_packet_misses_then_hits_for_each_kind_of_flow():
    rig = nat_rig()
    c = rig.dp.cache
    flows = [
        ("t1", "172.16.20.13", UDP(sport=1000, dport=2000)),  # routed by the DR alone: l3
        ("t1", "203.0.113.10", UDP(sport=1000, dport=2000)),  # through SR + SNAT: l4
        ("ext", "203.0.113.80", TCP(sport=5000, dport=8080, flags="A")),  # DNAT, but no SYN: invalid, never cached
    ]
    for sender, dst, l4 in flows[:2]:
        misses, hits = c.misses, c.hits
        assert send(rig, sender, frame(sender, dst, l4)) is not None
        assert send(rig, sender, frame(sender, dst, l4)) is None
        assert (c.misses - misses, c.hits - hits) == (1, 1)
    assert c.counters()["subtables"] == {"l2": 0, "l3": 1, "l4": 1, "tunnel": 0, "l3v6": 0, "l4v6": 0}
    rows = rig.handle({"cmd": "show", "what": "cache"})["result"]["entries"]
    assert {r["match"] for r in rows} == {"l3", "l4"} and all(r["hits"] == 1 for r in rows)
    assert any("ip src 203.0.113.6" in r["action"] and "conntrack" in r["action"] for r in rows)


def test_an_entry_works_its_rewrites_out_at_its_first_hit_or_when_shown():
    rig = nat_rig()
    c = rig.dp.cache
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=7, dport=9)))
    (entry,) = c._lru.values()
    assert entry.pending is not None, "a flow never hit again never pays for its rewrites"
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=7, dport=9)))
    assert entry.pending is None and entry.nat is not None and c.hits == 1
    send(rig, "t1", frame("t1", "172.16.20.13", UDP(sport=7, dport=9)))
    rows = rig.handle({"cmd": "show", "what": "cache"})["result"]["entries"]
    assert all(e.pending is None for e in c._lru.values()) and any(r["match"] == "l3" for r in rows)


def test_an_entry_whose_rewrites_fail_at_its_first_hit_is_removed(monkeypatch):
    import gateway.cache

    rig = nat_rig()
    c = rig.dp.cache
    raw = frame("t1", "203.0.113.10", UDP(sport=7, dport=9))
    send(rig, "t1", raw)
    (entry,) = c._lru.values()

    def broken(*_args):
        raise ValueError("a bug in the rewrites")

    monkeypatch.setattr(gateway.cache, "rewrites", broken)
    with pytest.raises(ValueError):
        c.hit(entry, bytearray(raw), 0.0)
    assert len(c) == 0, "the flow stays uncached, as when composing failed at install"


def test_cached_output_is_byte_identical_to_slow_path():
    a, b = cached_and_plain()
    pkts = [
        ("t1", "203.0.113.10", UDP(sport=4444, dport=53) / (b"x" * 7)),
        ("t3", "203.0.113.10", ICMP(id=99, seq=1)),
        ("t2", "203.0.113.10", UDP(sport=7, dport=8)),  # 1:1
        ("t1", "172.16.20.13", TCP(sport=1, dport=2, flags="S")),
        ("t1", "172.16.20.13", TCP(sport=1, dport=2, flags="A") / b"data"),
    ]
    for sender, dst, l4 in pkts:
        for ttl in (64, 9, 3):
            data = frame(sender, dst, l4, ttl=ttl)
            send(a, sender, data)
            send(b, sender, data)
            for port in ("trunk", "uplink"):
                assert a.take(port) == b.take(port)
    assert a.dp.cache.hits > 5


def test_route_change_takes_effect_on_next_packet():
    rig = nat_rig()
    data = frame("t1", "10.50.1.1", UDP(sport=1, dport=2))
    send(rig, "t1", data)
    send(rig, "t1", data)
    assert len(rig.take("uplink")) == 2 and rig.dp.cache.hits == 1
    assert rig.handle(
        {
            "cmd": "route",
            "action": "add",
            "router": "t1",
            "half": "dr",
            "prefix": "10.50.0.0/16",
            "via": "172.16.20.13",
        },
    )["ok"]
    send(rig, "t1", data)
    assert rig.take("uplink") == []
    (out,) = [Ether(f) for f in rig.take("trunk")]
    assert out[Dot1Q].vlan == 20 and out.dst == H3
    assert rig.dp.cache.invalidations >= 1


def test_neighbour_mac_change_takes_effect_on_next_packet():
    rig = nat_rig()
    data = frame("t1", "203.0.113.10", UDP(sport=1, dport=2))
    send(rig, "t1", data)
    send(rig, "t1", data)
    assert {Ether(f).dst for f in rig.take("uplink")} == {EXT}
    new_mac = "02:00:00:00:00:aa"
    rig.send(
        "uplink",
        bytes(
            Ether(src=new_mac, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=2, hwsrc=new_mac, psrc="203.0.113.10", pdst="203.0.113.10")
        ),
    )
    send(rig, "t1", data)
    assert [Ether(f).dst for f in rig.take("uplink")] == [new_mac]


def test_mac_move_takes_effect_on_next_packet():
    from suites.unit.conftest import EDGE_YAML, Rig

    rig = Rig(
        EDGE_YAML.replace(
            "web: {records: [{port: trunk, vlan: 10}]}",
            "web: {records: [{port: trunk, vlan: 10}, {port: uplink, vlan: 10}]}",
        )
    )
    other = "02:00:00:00:00:77"
    rig.send("uplink", bytes(Ether(src=other, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / UDP()))
    rig.take("trunk")
    data = bytes(Ether(src=H1, dst=other) / Dot1Q(vlan=10) / IP() / UDP())
    rig.send("trunk", data)
    rig.send("trunk", data)
    assert len(rig.take("uplink")) == 2 and rig.dp.cache.hits == 1
    # The host moves: it now speaks from the trunk on VLAN 10 ... and frames to it stay on the trunk side.
    rig.send("trunk", bytes(Ether(src=other, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / UDP()))
    rig.take("uplink")
    rig.send("trunk", data)
    assert rig.take("uplink") == [] and rig.dp.pipeline.drops().get("l2switch/same-segment") == 1


def test_hits_skip_dependency_checks_until_the_epoch_moves(monkeypatch):
    """While nothing changes a hit does not look at its dependencies; a change that
    bumps the epoch makes the next hit check them (and drop a stale entry); a change
    that forgot to bump is caught in verify mode (on in every unit test)."""
    import pytest

    from gateway.cache import Cache

    a, _ = cached_and_plain()
    epoch = a.dp.epoch
    data = frame("t1", "203.0.113.10", UDP(sport=4000, dport=53))
    send(a, "t1", data)
    send(a, "t1", data)
    assert a.dp.cache.hits == 1
    entry = next(iter(a.dp.cache._lru.values()))
    assert entry.checked == epoch.value
    monkeypatch.setattr(Cache, "verify", False)
    mac_deps = [obj for obj, attr, _ in entry.deps if attr == "valid"]
    assert mac_deps, "the entry depends on MAC/ARP entries"
    mac_deps[0].valid = False  # changed behind the cache's back: no bump
    send(a, "t1", data)
    assert a.dp.cache.hits == 2, "an unchanged epoch trusts the entry"
    epoch.bump()
    send(a, "t1", data)
    assert a.dp.cache.hits == 2 and a.dp.cache.invalidations == 1
    # Verify mode: the same silent change is an error, not a stale hit.
    send(a, "t1", data)  # reinstalled
    entry = next(iter(a.dp.cache._lru.values()))
    monkeypatch.setattr(Cache, "verify", True)
    dep = next(obj for obj, attr, _ in entry.deps if attr == "valid")
    dep.valid = not dep.valid
    assert entry.checked == epoch.value
    with pytest.raises(AssertionError, match="without an epoch bump"):
        a.dp.cache.lookup(a.dp.model.ports["trunk"], 10, bytearray(data[:12] + data[16:]))


def test_hosts_being_learned_do_not_make_hits_recheck():
    """A new MAC (or ARP entry) cannot invalidate any cache entry: only a replacement or a
    removal moves the epoch, so a tenant's stream of new source MACs leaves the other flows'
    hits on the path that does not look at their dependencies."""
    a, _ = cached_and_plain()
    data = frame("t1", "203.0.113.10", UDP(sport=4001, dport=53))
    send(a, "t1", data)
    send(a, "t1", data)
    before = a.dp.epoch.value
    for i in range(50):
        mac = f"02:00:00:77:{i // 256:02x}:{i % 256:02x}"
        a.send("trunk", bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / ARP(psrc="172.16.10.99")))
    assert len(a.dp.macs) >= 50 and a.dp.epoch.value == before
    hits = a.dp.cache.hits
    send(a, "t1", data)
    assert a.dp.cache.hits == hits + 1
    # (A move or an aging is a replacement or a removal: test_mac_move_takes_effect_on_next_packet.)
    a.dp.macs.age(time.monotonic() + 10_000)
    assert a.dp.epoch.value != before


def test_firewall_and_nat_rule_changes_take_effect_on_next_packet():
    rig = nat_rig()
    data = frame("t1", "203.0.113.10", UDP(sport=1, dport=53))
    send(rig, "t1", data)
    send(rig, "t1", data)
    assert len(rig.take("uplink")) == 2
    rig.handle(
        {
            "cmd": "firewall",
            "action": "add",
            "router": "t1",
            "position": 0,
            "rule": {"name": "no-dns", "action": "drop", "proto": "udp", "dport": 53},
        },
    )
    send(rig, "t1", data)
    assert rig.take("uplink") == [] and rig.drops() == {"sr/fw-drop": 1}
    rig.handle({"cmd": "firewall", "action": "del", "router": "t1", "name": "no-dns"})
    rig.handle(
        {
            "cmd": "nat",
            "action": "add",
            "router": "t1",
            "kind": "snat",
            "rule": {"name": "other-pool", "source": "172.16.10.11/32", "pool": ["203.0.113.99"]},
        },
    )
    send(rig, "t1", data)
    send(rig, "t1", data)
    assert [Ether(f)[IP].src for f in rig.take("uplink")] == ["203.0.113.99", "203.0.113.99"]


def test_tcp_set_up_and_tear_down_take_the_slow_path():
    rig = nat_rig()
    for flags in ("S", "A", "A", "FA", "R"):
        send(rig, "t1", frame("t1", "172.16.20.13", TCP(sport=9, dport=80, flags=flags)))
    c = rig.dp.cache
    assert c.hits == 2, "the SYN's walk installed the flow; both plain ACKs hit"
    assert c.bypass == 3  # SYN, FIN, RST never look up
    assert len(rig.take("trunk")) == 5
    # The FIN's and the RST's walks keep the SYN's entry rather than compose it again.
    assert c.installs == 1 and c.uncacheable.get("tcp-control-kept") == 2


@pytest.mark.parametrize("dst", ["203.0.113.10", "172.16.20.13"], ids=["north-south", "east-west"])
def test_the_tear_down_of_a_cached_flow_walks_without_recording(dst):
    """A FIN or RST of a flow that has its entry (l4 through the SR, l3 through the DR alone)
    meets every stage (conntrack sees it close) but records nothing for the cache: its entry
    stays, so recording would be thrown away (a third of a short connection's cost).  A SYN
    with no entry records its flow's."""
    rig = nat_rig()
    syn = send(rig, "t1", frame("t1", dst, TCP(sport=9, dport=80, flags="S")))
    assert syn.fx is not None and rig.dp.cache.installs == 1
    send(rig, "t1", frame("t1", dst, TCP(sport=9, dport=80, flags="A")))
    fin = send(rig, "t1", frame("t1", dst, TCP(sport=9, dport=80, flags="FA")))
    rst = send(rig, "t1", frame("t1", dst, TCP(sport=9, dport=80, flags="R")))
    assert fin.fx is None and rst.fx is None, "recorded for an entry that stays"
    assert fin.drop_reason is None and rst.drop_reason is None
    if dst == "203.0.113.10":
        assert rst.conn is not None and rst.conn.state == "closed"
    assert rig.dp.cache.installs == 1 and len(rig.take("uplink" if dst == "203.0.113.10" else "trunk")) == 4
    other = send(rig, "t1", frame("t1", "203.0.113.10", TCP(sport=10, dport=80, flags="S")))
    assert other.fx is not None and rig.dp.cache.installs == 2, "another flow: recorded as ever"


def test_a_stale_entry_kept_by_a_syn_walk_is_replaced_at_its_next_hit():
    rig = nat_rig()
    flow = ("t1", "203.0.113.10")
    send(rig, "t1", frame(*flow, TCP(sport=9, dport=80, flags="S")))
    send(rig, "t1", frame(*flow, TCP(sport=9, dport=80, flags="R")))
    # The connection is gone; the same tuple opens a new one, with a NAT session of its own.
    rig.dp.model.router("t1", "sr").services.ct.flush()
    send(rig, "t1", frame(*flow, TCP(sport=9, dport=80, flags="S")))
    c = rig.dp.cache
    assert c.uncacheable.get("tcp-control-kept") == 2, "the RST's and the second SYN's walks kept the old entry"
    send(rig, "t1", frame(*flow, TCP(sport=9, dport=80, flags="A")))
    assert c.invalidations >= 1 and c.installs == 2, "the old entry failed its hit; the ACK's walk installed anew"


def test_ttl_too_small_for_the_walk_takes_the_slow_path():
    rig = nat_rig()
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2), ttl=2))
    assert rig.drops() == {"sr/ttl-expired": 1}
    (err,) = [Ether(f) for f in rig.take("trunk")]
    assert err[ICMP].type == 11


def test_ip_options_are_forwarded_but_never_cached():
    from scapy.layers.inet import IPOption_RR

    a, _ = cached_and_plain()
    _mac, ip, _vlan, gw = SENDERS["t1"]
    data = bytes(
        Ether(src=H1, dst=gw)
        / Dot1Q(vlan=10)
        / IP(src=ip, dst="203.0.113.10", options=[IPOption_RR()])
        / UDP(sport=1, dport=2)
    )
    send(a, "t1", data)
    send(a, "t1", data)
    assert len(a.take("uplink")) == 2
    assert a.dp.cache.hits == 0 and a.dp.cache.counters()["uncacheable"]["ip-options"] == 2


def test_bad_checksum_never_hits():
    rig = nat_rig()
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2), bad_csum=True))
    assert rig.drops() == {"dr/ip-bad-checksum": 1}
    assert len(rig.take("uplink")) == 1


def test_capacity_bound_with_lru_eviction():
    rig = nat_rig()
    rig.dp.cache.capacity = 8
    for sport in range(20):
        send(rig, "t1", frame("t1", "172.16.20.13", UDP(sport=1000 + sport, dport=9)))
    c = rig.dp.cache
    # DR-only flows match on the destination: one entry however many ports.
    assert len(c) == 1 and c.hits == 19
    for sport in range(20):
        send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1000 + sport, dport=9)))
    assert len(c) == 8 and c.evictions == 13
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1019, dport=9)))
    assert c.hits == 20, "the most recent flow is still cached"


def test_idle_entries_expire():
    rig = nat_rig()
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    assert len(rig.dp.cache) == 1
    rig.dp.sweep(time.monotonic() + rig.dp.cache.idle_timeout + 1)
    assert len(rig.dp.cache) == 0 and rig.dp.cache.expirations == 1


def test_short_non_ip_frames_with_l4_entries_in_use():
    """Regression: the l3/l4 keys read IPv4 fields; a short ARP frame must not reach them."""
    rig = nat_rig()
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    assert rig.dp.cache.counters()["subtables"]["l4"] == 1
    rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10, type=0x0806)) + b"\x00\x01\x08\x00")
    rig.send("trunk", bytes(Ether(src=H1, dst=WEB_GW) / Dot1Q(vlan=10, type=0x0800)) + b"\x45")
    assert rig.dp.pipeline.internal_errors == 0
    assert rig.drops() == {"dr/arp-truncated": 1, "dr/ip-truncated": 1}


def test_cache_can_be_turned_off_and_flushed_at_run_time():
    rig = nat_rig()
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    assert rig.handle({"cmd": "cache", "action": "flush"})["result"]["flushed"] == 1
    assert rig.handle({"cmd": "cache", "action": "disable"})["ok"]
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    send(rig, "t1", frame("t1", "203.0.113.10", UDP(sport=1, dport=2)))
    assert rig.dp.cache.hits == 0 and len(rig.dp.cache) == 0
    assert rig.handle({"cmd": "cache", "action": "enable"})["ok"]


# -- equivalence -------------------------------------------------------------------------
l4_strategy = st.one_of(
    st.builds(
        lambda s, d, n: UDP(sport=s, dport=d) / (b"u" * n),
        st.sampled_from([53, 1000, 5353]),
        st.sampled_from([53, 5353, 9]),
        st.integers(0, 30),
    ),
    st.builds(
        lambda s, d, f: TCP(sport=s, dport=d, flags=f),
        st.sampled_from([80, 8080, 4000]),
        st.sampled_from([80, 8080, 23]),
        st.sampled_from(["S", "SA", "A", "PA", "FA", "R"]),
    ),
    st.builds(lambda i, t: ICMP(type=t, id=i), st.sampled_from([1, 2]), st.sampled_from([8, 0])),
)
packet_op = st.tuples(
    st.just("pkt"),
    st.sampled_from(sorted(SENDERS)),
    st.sampled_from(DESTS),
    l4_strategy,
    st.sampled_from([64, 64, 64, 3, 2, 1]),
    st.sampled_from([False, False, False, False, True]),
    st.integers(1, 4),
)
garbage_op = st.tuples(
    st.just("raw"),
    st.sampled_from(["trunk", "uplink"]),
    st.binary(min_size=14, max_size=60),
    st.sampled_from([WEB_GW, UP_GW, "ff:ff:ff:ff:ff:ff"]),
    st.sampled_from([0x0800, 0x0806, 0x86DD]),
)
change_op = st.tuples(
    st.just("change"),
    st.sampled_from(
        [
            {
                "cmd": "route",
                "action": "add",
                "router": "t1",
                "half": "dr",
                "prefix": "10.50.0.0/16",
                "via": "172.16.20.13",
            },
            {"cmd": "route", "action": "del", "router": "t1", "half": "dr", "prefix": "10.50.0.0/16"},
            {
                "cmd": "firewall",
                "action": "add",
                "router": "t1",
                "position": 0,
                "rule": {"name": "x", "action": "drop", "proto": "udp", "dport": 53},
            },
            {"cmd": "firewall", "action": "del", "router": "t1", "name": "x"},
            {
                "cmd": "nat",
                "action": "add",
                "router": "t1",
                "kind": "dnat",
                "rule": {"name": "y", "public": "203.0.113.80", "proto": "udp", "port": 53, "to": "172.16.10.12"},
            },
            {"cmd": "nat", "action": "del", "router": "t1", "name": "y"},
            "ext-new-mac",
            "ext-old-mac",
        ]
    ),
)


def _state(rig) -> dict:
    dp = rig.dp
    now = time.monotonic()
    strip = ("age", "expires_in", "idle")
    clean = lambda rows: [{k: v for k, v in r.items() if k not in strip} for r in rows]  # noqa: E731
    svc = next(r.services for r in dp.model.routers if r.services is not None)
    return {
        "drops": dp.pipeline.drops(),
        "mac": clean(dp.macs.dump(now)),
        "arp": clean([row for r in dp.model.routers for row in r.arp.dump(now)]),
        "conntrack": clean(svc.ct.dump(now)),
        "pools": svc.nat.pool_usage(),
        "ports": [(p.name, p.rx, p.tx) for p in dp.model.ports.values()],
    }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(packet_op, packet_op, packet_op, change_op, garbage_op), min_size=5, max_size=60))
def test_cache_on_and_off_are_indistinguishable(ops):
    a, b = cached_and_plain()
    for op in ops:
        if op[0] == "pkt":
            _, sender, dst, l4, ttl, bad, repeat = op
            data = frame(sender, dst, l4, ttl=ttl, bad_csum=bad)
            for _ in range(repeat):  # repeats are what the cache serves
                send(a, sender, data)
                send(b, sender, data)
        elif op[0] == "raw":
            _, port, junk, dst, ethertype = op
            vlan = b"\x81\x00\x00\x0a" if port == "trunk" else b""
            data = (
                bytes.fromhex(dst.replace(":", ""))
                + bytes.fromhex(H1.replace(":", ""))
                + vlan
                + ethertype.to_bytes(2, "big")
                + junk
            )
            a.send(port, data)
            b.send(port, data)
        elif isinstance(op[1], dict):
            ra, rb = a.handle(op[1]), b.handle(op[1])
            assert ra["ok"] == rb["ok"]
        else:
            mac = "02:00:00:00:00:aa" if op[1] == "ext-new-mac" else EXT
            arp = bytes(
                Ether(src=mac, dst=UP_GW) / ARP(op=2, hwsrc=mac, psrc="203.0.113.10", hwdst=UP_GW, pdst="203.0.113.1")
            )
            a.send("uplink", arp)
            b.send("uplink", arp)
        for port in ("trunk", "uplink"):
            assert a.take(port) == b.take(port), f"outputs differ on {port} after {op}"
    assert _state(a) == _state(b)
    assert a.dp.pipeline.internal_errors == b.dp.pipeline.internal_errors == 0


def test_show_mac_comes_in_pages():
    a, _ = cached_and_plain()
    for i in range(30):
        mac = f"02:00:00:66:00:{i:02x}"
        a.send("trunk", bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / ARP(psrc="172.16.10.98")))
    whole = a.handle({"cmd": "show", "what": "mac"})["result"]
    page = a.handle({"cmd": "show", "what": "mac", "offset": 10, "limit": 5})["result"]
    assert len(whole) >= 30 and page == whole[10:15]
    assert not a.handle({"cmd": "show", "what": "mac", "limit": -1})["ok"]
