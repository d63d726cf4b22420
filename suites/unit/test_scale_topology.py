"""The scale topology's plan at any size, without root: addresses, VLANs, routers, and each
DUT's rendering of it (the reference gateway's config validated by its own reader)."""

from __future__ import annotations

import ipaddress

import pytest

import topologies
from topologies.scale import plan_for


def test_the_default_plan_is_registered_and_small():
    plan = topologies.plan("scale")
    assert plan["params"] == {"tenants": 4, "hosts": 2, "edges": 1}
    assert len(plan["hosts"]) == 4 * 2 + 1


@pytest.mark.parametrize(("tenants", "hosts", "edges"), [(64, 4, 1), (300, 1, 3), (5, 3, 2)])
def test_every_tenant_has_its_own_segment_vlan_router_and_public_address(tenants, hosts, edges):
    plan = plan_for(tenants, hosts, edges)
    tenant_hosts = {n: h for n, h in plan["hosts"].items() if n != "ext1"}
    assert len(tenant_hosts) == tenants * hosts
    assert len({h["ip"] for h in tenant_hosts.values()}) == tenants * hosts
    assert len({h["mac"] for h in plan["hosts"].values()}) == len(plan["hosts"])
    routers = [r for g in plan["gateways"].values() for r in g["routers"]]
    assert len(routers) == tenants and len({r["tlr_id"] for r in routers}) == tenants
    publics = [r["nat"]["snat"][0]["pool"][0] for r in routers]
    assert len(set(publics)) == tenants
    up = ipaddress.IPv4Network("100.64.0.0/16")
    assert all(ipaddress.IPv4Address(p) in up for p in publics)
    for h in tenant_hosts.values():  # each host on its tenant's segment, behind its own edge's VLAN
        inst = plan["gateways"][h["node"]]["instances"][h["instance"]]
        assert inst == [{"port": "trunk", "vlan": h["vlan"]}]
        assert ipaddress.IPv4Interface(h["ip"]).network == ipaddress.IPv4Interface(f"{h['gw']}/24").network
    assert len(plan["gateways"]) == edges


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="tenants must be 1-1024"):
        plan_for(0)
    with pytest.raises(ValueError, match="edges must be 1-2"):
        plan_for(2, 1, 3)


def test_the_reference_gateway_accepts_64_tenants():
    from gateway import config
    from suites.duts.reference import render

    cfg = config.build(render(plan_for(64, 4), "edge1"), "scale")
    assert len(cfg.routers) == 64


def test_the_ovs_dut_renders_it():
    from suites.duts.ovs_render import render

    cfg = render(plan_for(8, 2), "edge1")
    assert len(cfg["routers"]) == 16 and len(cfg["records"]) == 9  # a DR and an SR each; 8 VLANs + the uplink
