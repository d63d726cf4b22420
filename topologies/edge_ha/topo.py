"""edge-ha's nodes and links, declared (``build`` starts nothing)."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from topologies.edge_ha.plan import PLAN
from topologies.nodes import FrrRouter


class EdgeHaTopo(Topo):
    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        st = self.addSwitch("st", dpid="00000000000000a1")
        sp = self.addSwitch("sp", dpid="00000000000000a2")
        hv1 = self.addNode("hv1", cls=gateway_cls)
        edges = [self.addNode(e, cls=gateway_cls) for e in ("edge1", "edge2")]
        h = plan["hosts"]
        for name in ("t1", "t2"):
            self.addHost(name, cls=host_cls, ip=h[name]["ip"], mac=h[name]["mac"], defaultRoute=f"via {h[name]['gw']}")
            self.addLink(name, hv1)  # hv1-eth0 (web), hv1-eth1 (app)
        self.addLink(hv1, st)  # hv1-eth2: transit
        for edge in edges:
            self.addLink(edge, st)  # edgeN-eth0: transit
            self.addLink(edge, sp)  # edgeN-eth1: uplink
        self.addHost(
            "pr",
            cls=FrrRouter,
            ip=h["pr"]["ip"],
            mac=h["pr"]["mac"],
            frr_routes=h["pr"]["frr_routes"],
            frr_bgp=h["pr"].get("bgp"),
            frr_bfd=h["pr"].get("bfd"),
        )
        self.addLink("pr", sp)
        self.addHost(
            "ext1", cls=host_cls, ip=h["ext1"]["ip"], mac=h["ext1"]["mac"], defaultRoute=f"via {h['ext1']['gw']}"
        )
        self.addLink("pr", "ext1", params1={"ip": h["pr"]["ip2"]})


TOPO = EdgeHaTopo
