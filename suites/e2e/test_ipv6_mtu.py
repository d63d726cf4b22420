"""The gateway's own packet too big, end to end: edge-basic with an uplink MTU of 1400 on
the gateway (a module of its own: one edge-basic at a time)."""

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
