"""zebra's FPM stream into an SR's FIB: framing, additions, deletions, resync, garbage."""

from __future__ import annotations

import struct

import pytest
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from gateway.fpm import RTM_DELROUTE, RTM_NEWROUTE, FpmServer
from gateway.headers import ip_int
from suites.unit.conftest import Rig


def route_msg(kind: int, dst: str, plen: int, *hops: str) -> bytes:
    m = rtmsg()
    m["header"]["type"] = kind
    m["family"] = 10 if ":" in dst else 2
    m["dst_len"] = plen
    m["table"] = 254
    attrs = [("RTA_DST", dst)]
    if len(hops) == 1:
        attrs.append(("RTA_GATEWAY", hops[0]))
    elif hops:
        attrs.append(("RTA_MULTIPATH", [{"attrs": [("RTA_GATEWAY", h)]} for h in hops]))
    m["attrs"] = attrs
    m.encode()
    return bytes(m.data)


def fpm(message: bytes) -> bytes:
    return struct.pack("!BBH", 1, 1, len(message) + 4) + message


class FakeSock:
    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


@pytest.fixture
def server():
    rig = Rig()
    sr = rig.dp.model.router("t1", "sr")
    srv = FpmServer(rig.dp.model, sr, FakeSock())
    srv.rig = rig  # type: ignore[attr-defined]
    return srv


def bgp_routes(srv) -> dict:
    return {(r.prefix, r.plen): r for r in srv.router.fib.routes() if r.origin == "bgp"}


def test_a_route_split_across_reads_lands_in_the_fib(server):
    stream = fpm(route_msg(RTM_NEWROUTE, "192.0.2.0", 24, "203.0.113.10"))
    server.feed(stream[:7])
    assert not bgp_routes(server)
    server.feed(stream[7:])
    route = bgp_routes(server)[(ip_int("192.0.2.0"), 24)]
    assert route.via == ip_int("203.0.113.10") and route.port.label == "t1-sr:provider"
    assert server.router.fib.lookup(ip_int("192.0.2.7")) is route


def test_equal_cost_next_hops_and_deletion(server):
    server.feed(fpm(route_msg(RTM_NEWROUTE, "198.51.100.0", 24, "203.0.113.10", "203.0.113.11")))
    (route,) = bgp_routes(server).values()
    assert [h for h, _p in route.ecmp] == [ip_int("203.0.113.10"), ip_int("203.0.113.11")]
    server.feed(fpm(route_msg(RTM_DELROUTE, "198.51.100.0", 24)))
    assert not bgp_routes(server) and server.removed == 1


def test_a_deletion_never_removes_a_configured_route(server):
    transit = [r for r in server.router.fib.routes() if r.origin == "transit"]
    server.feed(fpm(route_msg(RTM_DELROUTE, "172.16.10.0", 24)))
    assert [r for r in server.router.fib.routes() if r.origin == "transit"] == transit


def test_unusable_next_hop_is_rejected_and_counted(server):
    server.feed(fpm(route_msg(RTM_NEWROUTE, "10.0.0.0", 8, "192.168.1.1")))
    assert not bgp_routes(server) and server.rejected == 1
    assert "10.0.0.0/8" in server.errors[0]


def test_connected_routes_are_left_alone(server):
    server.feed(fpm(route_msg(RTM_NEWROUTE, "203.0.113.0", 24)))
    assert not bgp_routes(server) and server.rejected == 0


def test_resync_starts_from_nothing(server):
    server.feed(fpm(route_msg(RTM_NEWROUTE, "192.0.2.0", 24, "203.0.113.10")))
    server.flush_bgp()  # what a new connection (or a lost one) does
    assert not bgp_routes(server)


def test_a_broken_header_closes_the_stream_and_the_daemon_carries_on(server):
    server.feed(b"\x07\x01\x00\x08garbage!")
    assert server.rejected == 1 and "bad FPM header" in server.errors[-1]
    assert not server.buf
    server.feed(fpm(b"\x00" * 3))  # not a netlink message at all
    assert server.rejected == 2
    server.feed(fpm(route_msg(RTM_NEWROUTE, "192.0.2.0", 24, "203.0.113.10")))
    assert bgp_routes(server), "the stream works again after garbage"
    assert server.rig.dp.pipeline.internal_errors == 0


def test_fpm_changes_bump_the_epoch(server):
    before = server.rig.dp.epoch.value
    server.feed(fpm(route_msg(RTM_NEWROUTE, "192.0.2.0", 24, "203.0.113.10")))
    assert server.rig.dp.epoch.value > before, "cached flows must see the new route"


def test_a_streamed_table_is_installed_and_withdrawn_whole():
    """edgelab bench routes' own run, small: every streamed route installed as BGP, looked up,
    then every one withdrawn (and RTM_DELROUTE finds its route without a scan: Fib.get)."""
    from edgelab.bench_routes import prefixes, run_size

    row = run_size(3000)
    assert row["routes"] == 3000 and row["rejected"] == 0
    nets = prefixes(3000)
    assert len(set(nets)) == 3000 and {plen for _n, plen in nets} >= {16, 24}


def test_frr_announces_with_the_med_it_is_given():
    """An HA standby's announcements carry a higher MED, so the provider prefers the active."""
    import ipaddress

    from gateway.config.kernel import BgpConfig
    from gateway.io.frr import render

    bgp = BgpConfig(
        "t1", 64501, [(ipaddress.IPv4Address("203.0.113.254"), 64500)], [ipaddress.IPv4Network("172.16.0.0/16")]
    )
    assert "route-map" not in render(bgp, "edge1", "203.0.113.1", 2620)
    bgp.med = 200
    text = render(bgp, "edge2", "203.0.113.2", 2620)
    assert "  neighbor 203.0.113.254 route-map EDGELAB-OUT out" in text
    assert "route-map EDGELAB-OUT permit 10\n set metric 200" in text


def test_a_route_message_imports_nothing_in_the_loop(server, monkeypatch):
    # pyroute2's decoder costs ~160 ms to import: done when the listener is built, never
    # by the loop at zebra's first route (both SRs of edge-ha once stalled that long at once).
    import builtins

    def refuse(name, *args, **kwargs):
        raise AssertionError(f"import of {name} while applying a route")

    stream = fpm(route_msg(RTM_NEWROUTE, "192.0.2.0", 24, "203.0.113.10"))
    monkeypatch.setattr(builtins, "__import__", refuse)
    try:
        server.feed(stream)
    finally:
        monkeypatch.undo()
    assert (ip_int("192.0.2.0"), 24) in bgp_routes(server)


# -- IPv6 routes (a dual-stack SR) -----------------------------------------------------------
@pytest.fixture
def server6():
    from suites.unit.test_ipv6 import DUAL_YAML

    rig = Rig(DUAL_YAML)
    srv = FpmServer(rig.dp.model, rig.dp.model.router("t1", "sr"), FakeSock())
    srv.rig = rig  # type: ignore[attr-defined]
    return srv


def bgp_routes6(srv) -> dict:
    return {(r.prefix, r.plen): r for r in srv.router.fib6.routes() if r.origin == "bgp"}


def test_an_ipv6_route_lands_in_the_ipv6_fib_and_goes(server6):
    from gateway.headers6 import ip6_int

    server6.feed(fpm(route_msg(RTM_NEWROUTE, "2001:db8:100::", 48, "2001:db8:cb::fe")))
    route = bgp_routes6(server6)[(ip6_int("2001:db8:100::"), 48)]
    assert route.via == ip6_int("2001:db8:cb::fe") and route.port.label == "t1-sr:provider"
    assert server6.router.fib6.lookup(ip6_int("2001:db8:100::1")) is route
    assert not bgp_routes(server6), "nothing in the IPv4 FIB"
    server6.feed(fpm(route_msg(RTM_NEWROUTE, "2001:db8:200::", 48, "2001:db8:cb::fe", "2001:db8:cb::fd")))
    assert len(bgp_routes6(server6)[(ip6_int("2001:db8:200::"), 48)].ecmp) == 2
    server6.feed(fpm(route_msg(RTM_DELROUTE, "2001:db8:100::", 48)))
    assert (ip6_int("2001:db8:100::"), 48) not in bgp_routes6(server6)
    server6.flush_bgp()
    assert not bgp_routes6(server6)


def test_a_link_local_or_off_segment_ipv6_next_hop_is_rejected_by_name(server6):
    server6.feed(fpm(route_msg(RTM_NEWROUTE, "2001:db8:100::", 48, "fe80::1")))
    server6.feed(fpm(route_msg(RTM_NEWROUTE, "2001:db8:300::", 48, "2001:db8:99::1")))
    assert not bgp_routes6(server6) and server6.rejected == 2
    assert "link-local" in server6.errors[0] and "2001:db8:300::/48" in server6.errors[1]


def test_an_ipv6_route_for_an_sr_without_ipv6_is_rejected(server):
    server.feed(fpm(route_msg(RTM_NEWROUTE, "2001:db8:100::", 48, "2001:db8:cb::fe")))
    server.feed(fpm(route_msg(RTM_NEWROUTE, "2001:db8:cb::", 64)))  # connected: nothing to say
    assert server.rejected == 1 and "no IPv6" in server.errors[0]
    assert server.rig.dp.pipeline.internal_errors == 0


def test_frr_puts_each_neighbor_in_its_family():
    """An IPv6 neighbor carries IPv6 (not IPv4) with the peer's global next hop; the IPv6
    prefixes are announced in their family."""
    import ipaddress

    from gateway.config.kernel import BgpConfig
    from gateway.io.frr import render

    v4, v6 = ipaddress.IPv4Address("203.0.113.254"), ipaddress.IPv6Address("2001:db8:cb::fe")
    nets = [ipaddress.IPv4Network("172.16.0.0/16"), ipaddress.IPv6Network("2001:db8::/56")]
    text = render(BgpConfig("t1", 64501, [(v4, 64500), (v6, 64500)], nets, med=100), "edge1", "203.0.113.1", 2620)
    v4_af = text[text.index(" address-family ipv4") : text.index(" exit-address-family")]
    v6_af = text[text.index(" address-family ipv6") :]
    v6_af = v6_af[: v6_af.index(" exit-address-family")]
    assert "network 172.16.0.0/16" in v4_af and "no neighbor 2001:db8:cb::fe activate" in v4_af
    assert "network 2001:db8::/56" in v6_af and "neighbor 2001:db8:cb::fe activate" in v6_af
    assert "neighbor 2001:db8:cb::fe route-map EDGELAB-IN6 in" in v6_af and "2001:db8::/56" not in v4_af
    assert "neighbor 2001:db8:cb::fe route-map EDGELAB-OUT out" in v6_af
    assert "set ipv6 next-hop prefer-global" in text
    assert "address-family ipv6" not in render(
        BgpConfig("t1", 64501, [(v4, 64500)], nets[:1]), "edge1", "203.0.113.1", 2620
    )
