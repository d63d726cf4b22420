"""evi-dci's nodes and links, declared (``build`` starts nothing)."""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from topologies.evi_dci.plan import EDGES, PLAN


class EviDciTopo(Topo):
    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        hosts = plan["hosts"]
        core = hosts["core"]
        self.addHost("core", cls=host_cls, ip=core["ip"], mac=core["mac"])
        switches = {n: self.addSwitch(f"sw{n}", dpid=f"00000000000000e{n}") for n in (1, 2, 3)}
        for n, sw in switches.items():
            for name in (f"h{n}a", f"h{n}b"):
                h = hosts[name]
                self.addHost(name, cls=host_cls, ip=h["ip"], mac=h["mac"])
                self.addLink(name, sw)
        for name, (site, _net) in EDGES.items():
            edge = self.addNode(name, cls=gateway_cls)
            # The edge's link order fixes its interface names: eth0 trunk, eth1 core, eth2 other.
            self.addLink(edge, switches[site])
            self.addLink(edge, "core", params2={"ip": core["core_links"][name]})
        s1x = self.addSwitch("sw1x", dpid="00000000000000e4")
        self.addHost("x1", cls=host_cls, ip=hosts["x1"]["ip"], mac=hosts["x1"]["mac"])
        self.addLink("x1", s1x)
        self.addLink("edge1", s1x)


TOPO = EviDciTopo
