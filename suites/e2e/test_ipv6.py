"""edge-basic dual stack, end to end: IPv6 from real host namespaces through the gateway.

What is asserted is what the hosts' own stacks did with what they received:
the default route they learned from router advertisements, the replies and
ICMPv6 errors ping -6 saw, the address the far side saw, the path MTU a host
cached from a packet too big.  IPv6 is routed, not translated: the provider
routes the tenants' 2001:db8::/56 to the SR.
"""

from __future__ import annotations

import pytest

from suites.lib import traffic
from suites.lib.ipv6 import path_mtu, ra_route, send_big
from suites.lib.plans import addr6, link_local
from topologies.nodes import run


@pytest.mark.needs("ipv6.ra")
def test_hosts_learn_their_default_router_from_router_advertisements(lab, plan):
    """Nobody configured an IPv6 default route on the tenants: it comes from the router's RAs,
    via its link-local address on each tenant segment."""
    for name, instance in (("t1", "web"), ("t3", "app"), ("t4", "web")):
        host = lab.host(name)
        mac = next(
            p["mac"]
            for r in plan["gateways"]["edge1"]["routers"]
            for p in r["dr"]["ports"]
            if p["instance"] == instance
        )
        want = f"via {link_local(mac)}"
        route = ra_route(host, want)
        assert want in route and "proto ra" in route, route


@pytest.mark.needs("ipv6.routing", "ipv6.ra")
def test_ping6_the_router_across_tenants_and_on_the_segment(lab, plan):
    t1 = lab.host("t1")
    dr6 = plan["routers"]["t1"]["dr6"]
    ra_route(t1)
    for dst, hlim in ((dr6["web"], 64), (dr6["app"], 64), (addr6(plan, "t3"), 63), (addr6(plan, "t4"), 64)):
        result = traffic.ping(t1, dst, count=3)
        assert result.ok, f"{dst}: {result.text}"
        assert result.ttls and all(t == hlim for t in result.ttls), f"{dst}: hop limits {result.ttls}, want {hlim}"


@pytest.mark.needs("ipv6.routing", "ipv6.fw", "ipv6.ra")
def test_ipv6_to_the_provider_is_routed_not_translated(lab, plan):
    t1, ext2 = lab.host("t1"), lab.host("ext2")
    ra_route(t1)
    result = traffic.ping(t1, addr6(plan, "ext2"), count=3)
    assert result.ok, result.text
    assert result.ttls == [61] * 3, f"ext2's 64 less ext1, the SR and the DR: {result.ttls}"
    moved = traffic.tcp_transfer(t1, ext2, addr6(plan, "ext2"), nbytes=256 * 1024, port=5016)
    assert moved["client"]["sha256"] == moved["server"]["sha256"]
    assert moved["server"]["peer"] == addr6(plan, "t1"), "the far side sees the tenant's own address"


@pytest.mark.needs("ipv6.routing", "ipv6.ra")
def test_each_hop_answers_hop_limit_expiry(lab, plan):
    """ping -6 with hop limits 1, 2, 3: the DR (its web address), the SR (its uplink address),
    the provider router -- traceroute -6, hop by hop."""
    t1 = lab.host("t1")
    ra_route(t1)
    hops = [plan["routers"]["t1"]["dr6"]["web"], plan["routers"]["t1"]["sr6"]["uplink"], addr6(plan, "ext1")]
    for ttl, hop in enumerate(hops, start=1):
        result = traffic.ping(t1, addr6(plan, "ext2"), count=1, ttl=ttl)
        assert not result.ok
        assert [(src.rstrip(":"), text) for src, text in result.errors] == [(hop, "Time exceeded: Hop limit")], (
            f"hop {ttl}: {result.text}"
        )


@pytest.mark.needs("ipv6.fw", "ipv6.ra")
def test_unsolicited_inbound_ipv6_is_dropped(lab, plan):
    ext2 = lab.host("ext2")
    t1 = lab.host("t1")
    ra_route(t1)
    result = traffic.ping(ext2, addr6(plan, "t1"), count=2, wait=0.5)
    assert result.received == 0, result.text
    attempt = traffic.tcp_attempt(ext2, addr6(plan, "t1"), 22, timeout=2.0)
    assert attempt["outcome"] == "timeout", f"dropped, not answered: {attempt}"
    # The same tenant reaching out is answered: the firewall is stateful, not closed.
    assert traffic.ping(t1, addr6(plan, "ext2"), count=1).ok


@pytest.mark.needs("ipv6.fw", "ipv6.routing", "ipv6.ra")
def test_path_mtu_discovery_through_the_gateway(lab, plan):
    """ext1's link to ext2 has an MTU of 1400.  A 1452-byte packet from t1 draws a packet too big
    from ext1; it must cross the gateway's firewall back to t1, whose kernel then caches the
    path MTU (IPv6 routers never fragment: without it the flow is stuck)."""
    t1 = lab.host("t1")
    dst = addr6(plan, "ext2")
    ra_route(t1)
    run(t1, ["ip", "-6", "route", "flush", "cache"], check=False)
    traffic.ping(t1, dst, count=2, interval=0.3)  # a small one first: the flow is tracked
    said = send_big(t1, dst, 1404)
    assert path_mtu(t1, dst) == 1400, f"t1 learned no path MTU of 1400 towards {dst}; ping said {said}"
    # The path MTU is what lets a full-size packet through: one that fits arrives.
    assert run(t1, ["ping", "-n", "-c", "1", "-W", "1", "-s", "1352", dst], check=False).returncode == 0
