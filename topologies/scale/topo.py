"""scale's nodes and links, declared (``build`` starts nothing)."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from topologies.scale.plan import PLAN


class ScaleTopo(Topo):
    """Declares the nodes and links of a scale plan (``plan_for``); starts nothing."""

    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        s1, s2 = self.addSwitch("s1"), self.addSwitch("s2")
        for name, h in plan["hosts"].items():
            route = f"via {h['gw']}" if h.get("gw") else None
            self.addHost(name, cls=host_cls, ip=h["ip"], mac=h["mac"], defaultRoute=route)
            self.addLink(name, s1 if h["switch"] == "s1" else s2)
        # The gateways' link order fixes their interface names: eth0 trunk, eth1 uplink.
        for edge in plan["gateways"]:
            self.addNode(edge, cls=gateway_cls)
            self.addLink(edge, s1)
            self.addLink(edge, s2)


TOPO = ScaleTopo
