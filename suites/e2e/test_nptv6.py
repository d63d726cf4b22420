"""NPTv6 (RFC 6296) on edge-basic's SR, end to end: the tenants' 2001:db8::/48 leaves as
2001:db8:f000::/48 (the provider routes only that to the SR), as the far side sees it."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from suites.e2e.conftest import running
from suites.lib import traffic
from suites.lib.ipv6 import ra_route
from suites.lib.plans import addr6

INSIDE, OUTSIDE = "2001:db8::/48", "2001:db8:f000::/48"


def npt_plan() -> dict[str, Any]:
    import topologies

    plan = copy.deepcopy(topologies.plan("edge-basic"))
    plan["gateways"]["edge1"]["routers"][0]["nptv6"] = [{"name": "tenants", "inside": INSIDE, "outside": OUTSIDE}]
    plan["hosts"]["ext1"]["routes"] = {OUTSIDE: "2001:db8:cb::1"}  # the provider knows the outside prefix only
    return plan


def mapped(addr: str) -> str:
    """The address RFC 6296 maps ``addr`` to (computed here, independently of the gateway)."""
    i, o = ipaddress.IPv6Network(INSIDE), ipaddress.IPv6Network(OUTSIDE)
    words = list(ipaddress.IPv6Address(addr).packed)
    w = [int.from_bytes(bytes(words[k : k + 2]), "big") for k in range(0, 16, 2)]
    pi = [int.from_bytes(i.network_address.packed[k : k + 2], "big") for k in range(0, 6, 2)]
    po = [int.from_bytes(o.network_address.packed[k : k + 2], "big") for k in range(0, 6, 2)]

    def fold(x: int) -> int:
        while x >> 16:
            x = (x & 0xFFFF) + (x >> 16)
        return x

    adj = fold(fold(sum(pi)) + (~fold(sum(po)) & 0xFFFF))
    w[0:3] = po
    w[3] = fold(w[3] + adj)
    if w[3] == 0xFFFF:
        w[3] = 0
    return str(ipaddress.IPv6Address(b"".join(x.to_bytes(2, "big") for x in w)))


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Any]:
    with running(request, "edge-basic", plan=npt_plan()) as up:
        yield up


@pytest.mark.needs("ipv6.nptv6", "ipv6.routing", "ipv6.ra", "ipv6.fw")
def test_a_tenant_reaches_the_provider_through_its_mapped_prefix(lab):
    plan = lab.plan
    t1, ext2 = lab.host("t1"), lab.host("ext2")
    ra_route(t1)
    result = traffic.ping(t1, addr6(plan, "ext2"), count=3)
    assert result.ok, result.text
    moved = traffic.tcp_transfer(t1, ext2, addr6(plan, "ext2"), nbytes=256 * 1024, port=5018)
    assert moved["client"]["sha256"] == moved["server"]["sha256"], "the transfer arrives whole (checksum-neutral)"
    assert moved["server"]["peer"] == mapped(addr6(plan, "t1")), moved["server"]
    assert moved["server"]["peer"].startswith("2001:db8:f000:")


@pytest.mark.needs("ipv6.nptv6", "ipv6.fw", "ipv6.ra")
def test_the_mapped_address_takes_no_unsolicited_traffic(lab):
    plan = lab.plan
    ra_route(lab.host("t1"))
    result = traffic.ping(lab.host("ext2"), mapped(addr6(plan, "t1")), count=2, wait=0.5)
    assert result.received == 0, result.text
    assert traffic.ping(lab.host("t1"), addr6(plan, "ext2"), count=1).ok
