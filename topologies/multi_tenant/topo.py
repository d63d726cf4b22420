"""multi-tenant's nodes and links, declared (``build`` starts nothing)."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from topologies.multi_tenant.plan import PLAN
from topologies.nodes import FrrRouter


class MultiTenantTopo(Topo):
    """Declares the nodes and links of :data:`PLAN`; starts nothing."""

    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        s1 = self.addSwitch("s1")
        edge1 = self.addNode("edge1", cls=gateway_cls)
        for name in ("a1", "a2", "b1", "b2"):
            h = plan["hosts"][name]
            self.addHost(name, cls=host_cls, ip=h["ip"], mac=h["mac"], defaultRoute=f"via {h['gw']}")
            self.addLink(name, s1)
        # The gateway's link order fixes its interface names: eth0 trunk, eth1 uplink.
        self.addLink(edge1, s1)
        ext = plan["hosts"]["ext1"]
        self.addHost("ext1", cls=FrrRouter, ip=ext["ip"], mac=ext["mac"], frr_bgp=ext.get("bgp"))
        self.addLink(edge1, "ext1")
        ext2 = plan["hosts"]["ext2"]
        self.addHost("ext2", cls=host_cls, ip=ext2["ip"], mac=ext2["mac"], defaultRoute=f"via {ext2['gw']}")
        self.addLink("ext1", "ext2", params1={"ip": ext["ip2"]})


TOPO = MultiTenantTopo
