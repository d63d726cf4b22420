"""edge-basic's nodes and links, declared (``build`` starts nothing)."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from topologies.edge_basic.plan import PLAN
from topologies.nodes import FrrRouter


class EdgeBasicTopo(Topo):
    """Declares the nodes and links of :data:`PLAN`; starts nothing."""

    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        s1 = self.addSwitch("s1")
        edge1 = self.addNode("edge1", cls=gateway_cls)
        for name in ("t1", "t2", "t3"):
            h = plan["hosts"][name]
            self.addHost(name, cls=host_cls, ip=h["ip"], mac=h["mac"], defaultRoute=f"via {h['gw']}")
            self.addLink(name, s1)
        # The gateway's link order fixes its interface names: eth0 trunk, eth1 uplink, eth2 access.
        self.addLink(edge1, s1)
        ext = plan["hosts"]["ext1"]
        self.addHost("ext1", cls=FrrRouter, ip=ext["ip"], mac=ext["mac"], frr_bgp=ext.get("bgp"))
        self.addLink(edge1, "ext1")
        ext2 = plan["hosts"]["ext2"]
        self.addHost("ext2", cls=host_cls, ip=ext2["ip"], mac=ext2["mac"], defaultRoute=f"via {ext2['gw']}")
        self.addLink("ext1", "ext2", params1={"ip": ext["ip2"]})
        t4 = plan["hosts"]["t4"]
        self.addHost("t4", cls=host_cls, ip=t4["ip"], mac=t4["mac"], defaultRoute=f"via {t4['gw']}")
        self.addLink(edge1, "t4")
        probe = plan["probes"]["probe"]
        self.addHost("probe", cls=host_cls, ip=None, mac=probe["mac"])
        self.addLink("probe", s1)


TOPO = EdgeBasicTopo
