"""The datapath cache with IPv6: entries keyed on the IPv6 addresses (DR alone) or the 5-tuple
(through the SR's conntrack), hop limits taken, invalidation, and the same equivalence with the
slow path as IPv4's (byte-identical output, identical state) under random traffic and changes."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6TimeExceeded, IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether

from suites.unit.test_ipv6 import APP_GW, EXT, EXT_IP, H1, H1_IP, H3, H3_IP, UP_GW, WEB_GW, na, ns
from suites.unit.test_ipv6_services import rig as services_rig

FAR = "2001:db8:99::5"
SENDERS = {  # MAC, address, VLAN (None: the uplink), the router's MAC there
    "t1": (H1, H1_IP, 10, WEB_GW),
    "t3": (H3, H3_IP, 20, APP_GW),
    "far": (EXT, FAR, None, UP_GW),
}
DESTS = [H1_IP, H3_IP, FAR, "2001:db8:77::1", "2001:db8:10::1", "2001:db8:10::99"]


def rig6():
    r = services_rig()
    r.send("trunk", ns("2001:db8:20::1", src=H3_IP, mac=H3, vlan=20))
    r.take("trunk")
    return r


def frame(sender: str, dst: str, l4, hlim: int = 64, ext: bool = False) -> bytes:
    mac, src, vlan, gw = SENDERS[sender]
    ip = IPv6(src=src, dst=dst, hlim=hlim)
    if ext:
        ip = ip / IPv6ExtHdrDestOpt()
    eth = Ether(src=mac, dst=gw)
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    return bytes(eth / ip / l4)


def send(r, sender: str, data: bytes):
    return r.send("uplink" if SENDERS[sender][2] is None else "trunk", data)


def test_first_packet_misses_then_hits_east_west_and_north_south():
    r = rig6()
    c = r.dp.cache
    for sender, dst, l4 in (
        ("t1", H3_IP, UDP(sport=1000, dport=2000)),  # the DR alone: the addresses
        ("t1", FAR, UDP(sport=1000, dport=2000)),  # through the SR's conntrack: the 5-tuple
        ("t1", FAR, ICMPv6EchoRequest(id=5, seq=1)),
    ):
        misses, hits = c.misses, c.hits
        assert send(r, sender, frame(sender, dst, l4)) is not None
        assert send(r, sender, frame(sender, dst, l4)) is None
        assert (c.misses - misses, c.hits - hits) == (1, 1), (sender, dst)
    assert c.counters()["subtables"] == {"l2": 0, "l3": 0, "l4": 0, "tunnel": 0, "l3v6": 1, "l4v6": 2}
    rows = r.handle({"cmd": "show", "what": "cache"})["result"]["entries"]
    assert any(f"ip6 {H1_IP} > {FAR} proto 17 1000 > 2000" in row["key"] for row in rows), rows
    assert any("hop limit -2" in row["action"] and "conntrack" in row["action"] for row in rows)
    # The hits were the conntrack's too: the echo's entry counts both packets.
    conns = r.handle({"cmd": "show", "what": "conntrack", "router": "t1"})["result"]["t1"]["entries"]
    echo = next(e for e in conns if e["proto"] == "icmpv6")
    assert echo["packets"] == [2, 0]
    # The reply direction has its own entry (a miss, then hits).
    r.take("trunk")
    for _ in range(2):
        send(r, "far", frame("far", H1_IP, ICMPv6EchoReply(id=5, seq=1)))
    assert len(r.take("trunk")) == 2 and c.counters()["subtables"]["l4v6"] == 3


def test_cached_output_is_byte_identical_to_the_slow_path():
    a, b = rig6(), rig6()
    b.dp.cache.enabled = False
    flows = [
        ("t1", H3_IP, UDP(sport=4444, dport=53) / (b"x" * 7)),
        ("t1", FAR, UDP(sport=4444, dport=53)),
        ("t3", FAR, TCP(sport=1, dport=2, flags="S")),
        ("t3", FAR, TCP(sport=1, dport=2, flags="A") / b"data"),
        ("t1", FAR, ICMPv6EchoRequest(id=9)),
    ]
    for sender, dst, l4 in flows:
        for hlim in (64, 9, 3, 2, 1):
            data = frame(sender, dst, l4, hlim=hlim)
            send(a, sender, data)
            send(b, sender, data)
            for port in ("trunk", "uplink"):
                assert a.take(port) == b.take(port), (sender, dst, hlim)
    assert a.dp.cache.hits >= 8


def test_a_hop_limit_too_small_for_the_walk_takes_the_slow_path():
    r = rig6()
    data = frame("t1", FAR, UDP(sport=1, dport=2))
    send(r, "t1", data)
    send(r, "t1", data)
    assert r.dp.cache.hits == 1
    r.take("uplink")
    send(r, "t1", frame("t1", FAR, UDP(sport=1, dport=2), hlim=2))  # the DR takes 1, the SR would need 1 more
    (err,) = [Ether(f) for f in r.take("trunk")]
    assert err.haslayer(ICMPv6TimeExceeded) and r.dp.cache.hits == 1


def test_extension_headers_are_forwarded_but_never_cached():
    r = rig6()
    for _ in range(3):
        send(r, "t1", frame("t1", H3_IP, UDP(sport=1, dport=2), ext=True))
    assert len(r.take("trunk")) == 3
    assert len(r.dp.cache) == 0 and r.dp.cache.counters()["uncacheable"].get("ip6-extension-headers") == 3


def test_route_and_neighbour_changes_take_effect_on_the_next_packet():
    r = rig6()
    data = frame("t1", "2001:db8:77::1", UDP(sport=1, dport=2))
    send(r, "t1", data)
    send(r, "t1", data)
    assert [Ether(f).dst for f in r.take("uplink")] == [EXT, EXT]
    # The provider's router moves to another MAC (an override NA): the next packet follows it.
    r.send("uplink", na(EXT_IP, "02:00:00:00:00:aa", "2001:db8:cb::1", UP_GW, None, solicited=False))
    send(r, "t1", data)
    assert [Ether(f).dst for f in r.take("uplink")] == ["02:00:00:00:00:aa"]
    # A more specific route back to t3 on the DR: the next packet takes it.
    ok = r.handle({"cmd": "route", "action": "add", "router": "t1", "half": "dr", "prefix": "2001:db8:77::/48",
                   "via": H3_IP})  # fmt: skip
    assert ok["ok"], ok
    send(r, "t1", data)
    (out,) = [Ether(f) for f in r.take("trunk")]
    assert out.dst == H3 and out[IPv6].hlim == 63


# -- equivalence -------------------------------------------------------------------------
l4_strategy = st.one_of(
    st.builds(lambda s, d: UDP(sport=s, dport=d), st.sampled_from([53, 1000]), st.sampled_from([53, 9])),
    st.builds(
        lambda s, d, f: TCP(sport=s, dport=d, flags=f),
        st.sampled_from([80, 4000]),
        st.sampled_from([80, 23]),
        st.sampled_from(["S", "SA", "A", "PA", "FA", "R"]),
    ),
    st.builds(lambda i: ICMPv6EchoRequest(id=i), st.sampled_from([1, 2])),
    st.builds(lambda i: ICMPv6EchoReply(id=i), st.sampled_from([1, 2])),
)
packet_op = st.tuples(
    st.just("pkt"),
    st.sampled_from(sorted(SENDERS)),
    st.sampled_from(DESTS),
    l4_strategy,
    st.sampled_from([64, 64, 3, 2, 1]),
    st.sampled_from([False, False, False, True]),
    st.integers(1, 4),
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
                "prefix": "2001:db8:77::/48",
                "via": H3_IP,
            },  # fmt: skip
            {"cmd": "route", "action": "del", "router": "t1", "half": "dr", "prefix": "2001:db8:77::/48"},
            {
                "cmd": "firewall",
                "action": "add",
                "router": "t1",
                "position": 0,
                "rule": {"name": "x", "action": "drop", "proto": "udp", "dst": "2001:db8:99::/48"},
            },  # fmt: skip
            {"cmd": "firewall", "action": "del", "router": "t1", "name": "x"},
            "ext-new-mac",
            "ext-old-mac",
        ]
    ),
)


def _state(r) -> dict:
    dp = r.dp
    now = time.monotonic()
    strip = ("age", "expires_in", "idle")
    clean = lambda rows: [{k: v for k, v in x.items() if k not in strip} for x in rows]  # noqa: E731
    svc = next(x.services for x in dp.model.routers if x.services is not None)
    return {
        "drops": dp.pipeline.drops(),
        "nd": clean([row for x in dp.model.routers if x.nd is not None for row in x.nd.dump(now)]),
        "conntrack": clean(svc.ct.dump(now)),
        "ports": [(p.name, p.rx, p.tx) for p in dp.model.ports.values()],
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(packet_op, packet_op, packet_op, change_op), min_size=5, max_size=50))
def test_cache_on_and_off_are_indistinguishable_with_ipv6(ops):
    a, b = rig6(), rig6()
    b.dp.cache.enabled = False
    for op in ops:
        if op[0] == "pkt":
            _, sender, dst, l4, hlim, ext, repeat = op
            data = frame(sender, dst, l4, hlim=hlim, ext=ext)
            for _ in range(repeat):
                send(a, sender, data)
                send(b, sender, data)
        elif isinstance(op[1], dict):
            assert a.handle(op[1])["ok"] == b.handle(op[1])["ok"]
        else:
            mac = "02:00:00:00:00:aa" if op[1] == "ext-new-mac" else EXT
            adv = na(EXT_IP, mac, "2001:db8:cb::1", UP_GW, None, solicited=False)
            a.send("uplink", adv)
            b.send("uplink", adv)
        for port in ("trunk", "uplink"):
            assert a.take(port) == b.take(port), f"outputs differ on {port} after {op}"
    assert _state(a) == _state(b)
    assert a.dp.pipeline.internal_errors == b.dp.pipeline.internal_errors == 0


def test_a_connection_that_expired_takes_its_entry_with_it():
    """A hit must not keep a connection alive that the table has let go: the next packet meets the
    stages, which open it anew (and the firewall judges it again)."""
    r = rig6()
    data = frame("t1", FAR, UDP(sport=1, dport=2))
    send(r, "t1", data)
    send(r, "t1", data)
    svc = r.dp.model.router("t1", "sr").services
    svc.ct.expire(time.monotonic() + 1e6)
    assert len(svc.ct) == 0
    send(r, "t1", data)
    assert len(svc.ct) == 1, "the flow was opened again through the stages, not served from a dead entry"
