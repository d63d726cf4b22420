"""What a tenant cannot do to the edge or its neighbours, with real frames from tenant hosts:
VLAN hopping, claiming the gateway's address, spoofing a source, flooding source MACs.
Each attack is blocked (seen on the wire), counted, and the other tenants are unaffected.
The checks themselves are in ``suites/lib/security.py`` (the Robot suite runs them too)."""

from __future__ import annotations

import pytest

from suites.lib import security


@pytest.mark.needs("switching")
def test_double_tagged_frames_do_not_hop_vlans(lab, plan, gw):
    security.double_tagged_frames_do_not_hop_vlans(lab, plan, gw)


@pytest.mark.needs("sec.arp", "counters")
def test_a_tenant_claiming_the_gateway_address_moves_nobody(lab, plan, gw):
    security.a_tenant_claiming_the_gateway_address_moves_nobody(lab, plan, gw)


@pytest.mark.needs("sec.arp", "routing", "counters")
def test_a_tenant_claiming_another_segments_host_moves_nobody(lab, plan, gw):
    security.a_tenant_claiming_another_segments_host_moves_nobody(lab, plan, gw)


@pytest.mark.needs("sec.urpf", "counters")
def test_a_spoofed_source_does_not_leave_the_tenant_segment(lab, plan, gw):
    security.a_spoofed_source_does_not_leave_the_tenant_segment(lab, plan, gw)


@pytest.mark.needs("switching", "routing")
def test_a_mac_flood_leaves_the_other_hosts_working(lab, plan, gw):
    security.a_mac_flood_leaves_the_other_hosts_working(lab, plan, gw)
