"""SR recovery without preemption (edge-ha with preempt: false), in a module of its own: its
topology must not run beside test_failover's (the same node names)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from suites.e2e.conftest import running
from suites.e2e.test_failover import EXT, PUBLICS, both_up, dr_neighbour
from suites.lib import traffic
from suites.lib.expect import poll


@pytest.fixture(scope="module")
def ha_no_preempt(request: pytest.FixtureRequest) -> Iterator[Any]:
    import topologies

    plan = topologies.plan("edge-ha")
    for edge in ("edge1", "edge2"):
        plan["gateways"][edge]["routers"][0]["ha"]["preempt"] = False
    with running(request, "edge-ha", plan=plan, needs_frr=True) as lab:
        yield lab


@pytest.mark.needs("ha.preempt", "fault.crash", "internals.ha")
def test_recovery_without_preemption(ha_no_preempt):
    """preempt: false — a recovered SR comes back as standby: it claims none of its
    addresses the peer holds, until that peer fails in turn."""
    lab = ha_no_preempt
    plan = lab.plan
    poll(lambda: both_up(lab), timeout=15, what="BFD up")
    poll(
        lambda: all(lab.gateway(e).show("ha")["yielded"]["t1-sr"] == [] for e in ("edge1", "edge2")),
        timeout=5,
        what="both SRs claimed their own addresses",
    )
    assert traffic.ping(lab.host("t1"), EXT, count=2).ok
    assert dr_neighbour(lab, "169.254.0.2") == plan["transit"]["mac"]["edge1"]
    lab.gateway("edge1").crash()
    poll(lambda: "169.254.0.2" in lab.gateway("edge2").show("ha")["owned"]["t1-sr"], timeout=5, what="edge2 took over")
    assert traffic.ping(lab.host("t1"), EXT, count=3).ok
    # edge1 returns: no preemption, so it stays standby for its own addresses.
    lab.stop_gateway("edge1")
    lab.start_gateway("edge1")
    poll(lambda: both_up(lab), timeout=15, what="BFD up with the recovered edge1")
    time.sleep(2.0)  # past the claim wait of the recovered agent
    # Its public NAT addresses too, and its IPv6 addresses (uplink, transit).
    edge1_own = {
        "169.254.0.2",
        plan["uplinks"]["edge1"],
        plan["uplinks6"]["edge1"],
        plan["transit"]["sr6"]["edge1"],
        *PUBLICS,
    }
    assert set(lab.gateway("edge2").show("ha")["owned"]["t1-sr"]) == edge1_own, "edge2 keeps what it took"
    assert set(lab.gateway("edge1").show("ha")["yielded"]["t1-sr"]) >= edge1_own
    assert dr_neighbour(lab, "169.254.0.2") == plan["transit"]["mac"]["edge2"]
    assert traffic.ping(lab.host("t1"), EXT, count=3).ok
    # Now the holder fails: edge1 claims its own addresses back and takes over edge2's.
    lab.gateway("edge2").crash()
    poll(
        lambda: lab.gateway("edge1").show("ha")["yielded"]["t1-sr"] == [],
        timeout=5,
        what="edge1 claimed its own addresses",
    )
    poll(
        lambda: dr_neighbour(lab, "169.254.0.2") == plan["transit"]["mac"]["edge1"],
        timeout=5,
        what="the DR follows edge1's claim",
    )
    assert traffic.ping(lab.host("t1"), EXT, count=3).ok
