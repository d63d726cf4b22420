"""edge-ha: a DR node, a transit switch, two SR edges, a provider router.

::

    t1 (web) ──┐                              ┌── edge1 (SR, active) ──┐
               hv1 (DR) ══ st (transit) ══════┤                        ├══ sp ── pr ── ext1
    t2 (app) ──┘         169.254.0.0/28       └── edge2 (SR, standby) ─┘  203.0.113.0/24   198.51.100.0/24

- ``hv1`` runs the DR of logical router ``t1``: tenants on two logical
  switches, default route to the SR transit address 169.254.0.2.
- ``edge1`` (169.254.0.2, uplink 203.0.113.1) and ``edge2`` (169.254.0.3,
  uplink 203.0.113.2) run the SRs; each runs an HA agent with a BFD session
  to the other (100 ms x 3) over the transit switch, through its datapath.
- ``pr`` is the provider router: Linux forwarding, FRR (zebra + staticd)
  holding the route to the tenant prefixes via 203.0.113.1.
  When edge1 fails, edge2 takes over 169.254.0.2 and 203.0.113.1 with
  gratuitous ARPs: no route changes anywhere.
- ``st`` and ``sp`` are OVS userspace bridges (plain learning switches).
"""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

from topologies.nodes import FrrRouter

NAME = "edge-ha"


def _sr(
    node: str, transit_ip: str, transit_mac: str, uplink_ip: str, uplink_mac: str, peer_transit: str, peer_uplink: str
) -> dict[str, Any]:
    return {
        "node": node,
        "ports": {
            "transit": {"ifname": f"{node}-eth0", "role": "transit"},
            "uplink": {"ifname": f"{node}-eth1", "role": "uplink"},
        },
        "instances": {
            "transit": {"records": [{"port": "transit", "vlan": None}]},
            "provider": {"records": [{"port": "uplink", "vlan": None}]},
        },
        "routers": [
            {
                "name": "t1",
                "tlr_id": 1,
                "sr": {
                    "ports": [{"instance": "provider", "ip": f"{uplink_ip}/24", "mac": uplink_mac}],
                    "routes": [
                        {"prefix": "0.0.0.0/0", "via": "203.0.113.254"},
                        {"prefix": "172.16.0.0/16", "via": "169.254.0.1"},
                    ],
                },
                "transit": {
                    "subnet": "169.254.0.0/28",
                    "dr": "169.254.0.1",
                    "sr": transit_ip,
                    "instance": "transit",
                    "sr_mac": transit_mac,
                },
                "ha": {
                    "peers": [{"transit": peer_transit, "addresses": [peer_uplink]}],
                    "bfd": {"tx_ms": 100, "rx_ms": 100, "mult": 3},
                    "preempt": True,
                },
            }
        ],
    }


PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "DR node, transit switch, two SR edges with BFD failover, provider router",
    "hosts": {
        "t1": {
            "ip": "172.16.10.11/24",
            "gw": "172.16.10.1",
            "vlan": None,
            "instance": "web",
            "node": "hv1",
            "mac": "02:00:01:10:00:11",
        },
        "t2": {
            "ip": "172.16.20.12/24",
            "gw": "172.16.20.1",
            "vlan": None,
            "instance": "app",
            "node": "hv1",
            "mac": "02:00:01:20:00:12",
        },
        "pr": {
            "ip": "203.0.113.254/24",
            "gw": None,
            "vlan": None,
            "instance": None,
            "node": None,
            "mac": "02:00:01:cb:00:fe",
            "router": True,
            "ip2": "198.51.100.1/24",
            # FRR (zebra + staticd) on the provider router holds the route to the tenants.
            "frr_routes": {"172.16.0.0/16": "203.0.113.1"},
        },
        "ext1": {
            "ip": "198.51.100.10/24",
            "gw": "198.51.100.1",
            "vlan": None,
            "instance": None,
            "node": None,
            "mac": "02:00:01:c6:00:10",
        },
    },
    "switches": {"st": {"access": {}, "trunks": []}, "sp": {"access": {}, "trunks": []}},
    "transit": {
        "subnet": "169.254.0.0/28",
        "dr": "169.254.0.1",
        "sr": {"edge1": "169.254.0.2", "edge2": "169.254.0.3"},
        "mac": {"hv1": "02:00:01:a9:00:01", "edge1": "02:00:01:a9:00:02", "edge2": "02:00:01:a9:00:03"},
    },
    "uplinks": {"edge1": "203.0.113.1", "edge2": "203.0.113.2"},
    "gateways": {
        "hv1": {
            "ports": {
                "web": {"ifname": "hv1-eth0", "peer": "t1"},
                "app": {"ifname": "hv1-eth1", "peer": "t2"},
                "transit": {"ifname": "hv1-eth2", "peer": "st"},
            },
            "mgmt_ip": None,
            "config": {
                "node": "hv1",
                "ports": {
                    "web": {"ifname": "hv1-eth0", "role": "tenant"},
                    "app": {"ifname": "hv1-eth1", "role": "tenant"},
                    "transit": {"ifname": "hv1-eth2", "role": "transit"},
                },
                "instances": {
                    "web": {"records": [{"port": "web", "vlan": None}]},
                    "app": {"records": [{"port": "app", "vlan": None}]},
                    "transit": {"records": [{"port": "transit", "vlan": None}]},
                },
                "routers": [
                    {
                        "name": "t1",
                        "tlr_id": 1,
                        "dr": {
                            "ports": [
                                {"instance": "web", "ip": "172.16.10.1/24", "mac": "02:00:01:10:00:01"},
                                {"instance": "app", "ip": "172.16.20.1/24", "mac": "02:00:01:20:00:01"},
                            ]
                        },
                        "transit": {
                            "subnet": "169.254.0.0/28",
                            "dr": "169.254.0.1",
                            "instance": "transit",
                            "peers": ["169.254.0.2"],
                            "dr_mac": "02:00:01:a9:00:01",
                        },
                    }
                ],
            },
        },
        "edge1": {
            "ports": {},
            "mgmt_ip": None,
            "config": _sr(
                "edge1",
                "169.254.0.2",
                "02:00:01:a9:00:02",
                "203.0.113.1",
                "02:00:01:cb:00:01",
                "169.254.0.3",
                "203.0.113.2",
            ),
        },
        "edge2": {
            "ports": {},
            "mgmt_ip": None,
            "config": _sr(
                "edge2",
                "169.254.0.3",
                "02:00:01:a9:00:03",
                "203.0.113.2",
                "02:00:01:cb:00:02",
                "169.254.0.2",
                "203.0.113.1",
            ),
        },
    },
    "routers": {
        "t1": {"tlr_id": 1, "dr": {"web": "172.16.10.1", "app": "172.16.20.1"}, "sr": {"uplink": "203.0.113.1"}}
    },
    "nat": {},
}


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
        self.addHost("pr", cls=FrrRouter, ip=h["pr"]["ip"], mac=h["pr"]["mac"], frr_routes=h["pr"]["frr_routes"])
        self.addLink("pr", sp)
        self.addHost(
            "ext1", cls=host_cls, ip=h["ext1"]["ip"], mac=h["ext1"]["mac"], defaultRoute=f"via {h['ext1']['gw']}"
        )
        self.addLink("pr", "ext1", params1={"ip": h["pr"]["ip2"]})


TOPO = EdgeHaTopo
