"""bench-evi: a generator and a sink at two sites joined by EVI — for ``bench evi``.

::

    gen ──── edgeA ──── core ──── edgeB ──── sink
    10.100.0.1   10.255.1.1  10.255.{1,2}.254  10.255.2.1   10.100.0.2

- ``gen`` and ``sink`` share one L2 domain (10.100.0.0/24, instance ``v100``,
  untagged on the edges' access ports), extended by MAC-in-GRE between
  ``edgeA`` (site 1) and ``edgeB`` (site 2): static links, no discovery, so
  the benchmark measures the data plane alone.
- ``core`` is the IP core: Linux forwarding between 10.255.1.0/24 and
  10.255.2.0/24, MTU 1600 on both links.
- No switch anywhere: the hosts are on the edges' own veths, so nothing but
  the edges and the core router stands between generator and sink.
"""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

NAME = "bench-evi"


def _edge(name: str, site: int, host: str, other: int) -> dict[str, Any]:
    return {
        "ports": {
            "access": {"ifname": f"{name}-eth0", "peer": host, "role": "tenant"},
            "core": {"ifname": f"{name}-eth1", "peer": "core", "role": "core"},
        },
        "instances": {"v100": [{"port": "access", "vlan": None}]},
        "evi": {
            "site": site,
            "port": "core",
            "address": f"10.255.{site}.1/24",
            "gateway": f"10.255.{site}.254",
            "mtu": 1600,
            "instances": {"v100": 5100},
            "links": [{"site": other, "address": f"10.255.{other}.1", "mtu": 1600}],
        },
    }


PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "generator and sink at two sites joined by EVI: the EVI forwarding benchmark",
    "hosts": {
        "gen": {
            "ip": "10.100.0.1/24",
            "gw": None,
            "vlan": None,
            "instance": "v100",
            "node": "edgeA",
            "mac": "02:00:0b:00:00:01",
        },
        "sink": {
            "ip": "10.100.0.2/24",
            "gw": None,
            "vlan": None,
            "instance": "v100",
            "node": "edgeB",
            "mac": "02:00:0b:00:00:02",
        },
        "core": {
            "ip": "10.255.1.254/24",
            "gw": None,
            "vlan": None,
            "instance": None,
            "node": None,
            "mac": "02:00:0b:ff:00:01",
            "router": True,
            "ip2": "10.255.2.254/24",
        },
    },  # fmt: skip
    "links": [{"between": ["core", "edgeA"], "mtu": 1600}, {"between": ["core", "edgeB"], "mtu": 1600}],
    "gateways": {"edgeA": _edge("edgeA", 1, "gen", 2), "edgeB": _edge("edgeB", 2, "sink", 1)},
}


class BenchEviTopo(Topo):
    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        h = plan["hosts"]
        for name in ("gen", "sink", "core"):
            self.addHost(name, cls=host_cls, ip=h[name]["ip"], mac=h[name]["mac"])
        a = self.addNode("edgeA", cls=gateway_cls)
        b = self.addNode("edgeB", cls=gateway_cls)
        self.addLink("gen", a)  # edgeA-eth0: access
        self.addLink(a, "core")  # edgeA-eth1: core
        self.addLink("sink", b)  # edgeB-eth0: access
        self.addLink(b, "core", params2={"ip": h["core"]["ip2"]})


TOPO = BenchEviTopo
