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
    m["family"] = 2
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
