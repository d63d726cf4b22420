"""The next link's MTU, end to end: edge-basic with an uplink MTU of 1400 on the gateway
(a module of its own: one edge-basic at a time).  IPv6: the gateway's own packet too big,
never a fragment.  IPv4: fragmentation needed when the sender set don't-fragment, else
fragments the far side reassembles."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from suites.e2e.conftest import running
from suites.lib import traffic
from suites.lib.ipv6 import path_mtu, ra_route, send_big
from suites.lib.plans import addr6
from topologies.nodes import run


def mtu_plan() -> dict[str, Any]:
    import topologies

    plan = copy.deepcopy(topologies.plan("edge-basic"))
    plan["gateways"]["edge1"]["ports"]["uplink"]["mtu"] = 1400
    return plan


@pytest.fixture(scope="module")
def small_uplink(request: pytest.FixtureRequest) -> Iterator[Any]:
    with running(request, "edge-basic", plan=mtu_plan()) as up:
        yield up


@pytest.mark.needs("ipv6.routing", "ipv6.ra")
def test_the_gateway_answers_a_packet_too_big_for_its_uplink(small_uplink):
    """An uplink MTU of 1400 on the gateway: t1's 1452-byte packet to ext1 is answered with a
    packet too big from the SR, and t1's own kernel caches the path MTU (never fragmented)."""
    lab = small_uplink
    t1 = lab.host("t1")
    dst = addr6(lab.plan, "ext1")
    ra_route(t1)
    run(t1, ["ip", "-6", "route", "flush", "cache"], check=False)
    said = send_big(t1, dst, 1404)
    assert path_mtu(t1, dst) == 1400, f"t1 learned no path MTU of 1400 towards {dst}; ping said {said}"
    assert traffic.ping(t1, dst, count=1).ok, "small packets go on"


@pytest.mark.needs("routing")
def test_ipv4_with_dont_fragment_gets_fragmentation_needed_and_the_sender_learns_the_mtu(small_uplink):
    """t1's 1500-byte datagram with DF to ext2 is answered with ICMP fragmentation needed
    carrying 1400: t1's kernel caches a path MTU of 1400 towards ext2."""
    lab = small_uplink
    t1 = lab.host("t1")
    dst = lab.plan["hosts"]["ext2"]["ip"].split("/")[0]
    run(t1, ["ip", "route", "flush", "cache"], check=False)
    said = send_big(t1, dst, 1472)
    assert path_mtu(t1, dst) == 1400, f"t1 learned no path MTU of 1400 towards {dst}; ping said {said}"
    assert traffic.ping(t1, dst, count=1).ok, "small packets go on"


@pytest.mark.needs("routing")
def test_ipv4_without_dont_fragment_crosses_in_fragments(small_uplink):
    """t1's 1500-byte pings with DF clear to ext2 cross the 1400-byte uplink in fragments the
    gateway made (seen on ext1's side of it, none larger than 1400), and ext2 answers each."""
    lab = small_uplink
    t1 = lab.host("t1")
    dst = lab.plan["hosts"]["ext2"]["ip"].split("/")[0]
    run(t1, ["ip", "route", "flush", "cache"], check=False)  # (no path MTU from a test before: t1 sends 1500)
    out = _fragmented_pings(lab, dst)
    assert max(f.len for f in out) <= 1400, [(f.len, f.frag, f.flags) for f in out]


@pytest.mark.needs("routing", "nat.snat")
def test_a_tenants_own_fragments_cross_the_nat(small_uplink):
    """t1 knows the path MTU (1400) and cuts its 1500-byte pings itself: the SR puts each
    datagram together for its NAT (only the first fragment has the ports) and sends it on in
    fragments from its pool address; ext2 answers each."""
    lab = small_uplink
    t1 = lab.host("t1")
    dst = lab.plan["hosts"]["ext2"]["ip"].split("/")[0]
    send_big(t1, dst, 1472)
    assert path_mtu(t1, dst) == 1400, "t1 must know the path MTU to cut its datagrams itself"
    out = _fragmented_pings(lab, dst)
    pool = {p.src for p in out}
    assert max(f.len for f in out) <= 1400 and not pool & {"172.16.10.11"}, pool


def _fragmented_pings(lab: Any, dst: str) -> list[Any]:
    """Three 1500-byte pings from t1 with DF clear, answered; the fragments on ext1's side of
    the uplink."""
    from scapy.layers.inet import IP

    t1, ext1 = lab.host("t1"), lab.host("ext1")
    with traffic.capture(ext1, lab.intf_towards("ext1", "edge1"), seconds=5) as cap:
        res = run(t1, ["ping", "-n", "-c", "3", "-i", "0.3", "-W", "1", "-M", "dont", "-s", "1472", dst], check=False)
    assert " 0% packet loss" in res.stdout, res.stdout + res.stderr
    frames = [IP(bytes(f.payload)) for f in cap.frames if f.type == 0x0800]
    out = [p for p in frames if p.dst == dst and (p.flags.MF or p.frag)]
    assert len(out) >= 6, "the pings crossed in fragments"
    return out
