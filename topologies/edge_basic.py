"""edge-basic: one edge gateway, two tenant VLANs, a provider host.

::

    t1 (vlan 10, web) ─┐
    t2 (vlan 10, web) ─┤                                   uplink 203.0.113.0/24
    t3 (vlan 20, app) ─┼─ s1 (OVS, access ports) ══trunk══ edge1 ── ext1 ── ext2
    probe (trunk)     ─┘                                    │      (provider   198.51.100.0/24
                                                            │       router)
                                                            t4 (access, untagged, web)

- ``s1`` is an OVS userspace bridge: t1..t3 sit on access ports of their
  VLAN; the port towards ``edge1`` and the ``probe`` port are trunks carrying
  every VLAN, so ``probe`` can put any tagged frame on the wire.
- ``edge1`` is the gateway: instance ``web`` = (trunk, VLAN 10), ``app`` =
  (trunk, VLAN 20), ``provider`` = (uplink, untagged); ``t4`` on the
  untagged ``access`` port is also in ``web``, so t1 <-> t4 is switched by
  the gateway itself (VLAN 10 popped one way, pushed the other).  Logical router ``t1``
  (TLR id 1): DR ports 172.16.10.1 and 172.16.20.1, SR uplink 203.0.113.1.
- ``ext1`` is the provider's router (Linux forwarding), ``ext2`` a host
  behind it, so traceroute from a tenant crosses the NAT with ICMP errors
  from a router beyond it.  The provider has no route to the tenant
  prefixes: the SR's NAT is the only way in and out.
- NAT on the SR: tenants (172.16.0.0/16) -> pool 203.0.113.64-65; port
  forward 203.0.113.80 tcp/8080 -> t3:80 and udp/5353 -> t3:5353; 1:1
  203.0.113.90 <-> t2.  Firewall: telnet out is rejected; unsolicited inbound
  is dropped unless NAT forwards it.

The plan below is the one source of addresses; suites read it.
"""

from __future__ import annotations

from typing import Any

from mininet.topo import Topo

NAME = "edge-basic"

PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "one edge gateway with NAT and firewall, tenants on VLANs 10 and 20, a provider router and host",
    "hosts": {
        "t1": {
            "ip": "172.16.10.11/24",
            "gw": "172.16.10.1",
            "vlan": 10,
            "instance": "web",
            "node": "edge1",
            "switch": "s1",
            "mac": "02:00:00:10:00:11",
        },
        "t2": {
            "ip": "172.16.10.12/24",
            "gw": "172.16.10.1",
            "vlan": 10,
            "instance": "web",
            "node": "edge1",
            "switch": "s1",
            "mac": "02:00:00:10:00:12",
        },
        "t3": {
            "ip": "172.16.20.13/24",
            "gw": "172.16.20.1",
            "vlan": 20,
            "instance": "app",
            "node": "edge1",
            "switch": "s1",
            "mac": "02:00:00:20:00:13",
        },
        "t4": {
            "ip": "172.16.10.14/24",
            "gw": "172.16.10.1",
            "vlan": None,
            "instance": "web",
            "node": "edge1",
            "port": "access",
            "mac": "02:00:00:10:00:14",
        },
        "ext1": {
            "ip": "203.0.113.10/24",
            "gw": None,
            "vlan": None,
            "instance": "provider",
            "node": "edge1",
            "mac": "02:00:00:cb:00:10",
            "router": True,
            "ip2": "198.51.100.1/24",
        },
        "ext2": {
            "ip": "198.51.100.10/24",
            "gw": "198.51.100.1",
            "vlan": None,
            "instance": None,
            "node": None,
            "mac": "02:00:00:c6:00:10",
        },
    },
    # Hosts with no address on a trunk port: they craft tagged frames with scapy.
    "probes": {"probe": {"switch": "s1", "mac": "02:00:00:ee:00:01"}},
    # Link properties the lab applies after start: the provider's inner link
    # has a smaller MTU, so path-MTU discovery through the NAT can be shown.
    "links": [{"between": ["ext1", "ext2"], "mtu": 1400}],
    "switches": {"s1": {"access": {"t1": 10, "t2": 10, "t3": 20}, "trunks": ["edge1", "probe"]}},
    "gateways": {
        "edge1": {
            "ports": {
                "trunk": {"ifname": "edge1-eth0", "peer": "s1", "role": "tenant"},
                "uplink": {"ifname": "edge1-eth1", "peer": "ext1", "role": "uplink"},
                "access": {"ifname": "edge1-eth2", "peer": "t4", "role": "tenant"},
            },
            "mgmt_ip": None,
            "config": {
                "node": "edge1",
                "ports": {
                    "trunk": {"ifname": "edge1-eth0", "role": "tenant"},
                    "uplink": {"ifname": "edge1-eth1", "role": "uplink"},
                    "access": {"ifname": "edge1-eth2", "role": "tenant"},
                },
                "instances": {
                    "web": {"records": [{"port": "trunk", "vlan": 10}, {"port": "access", "vlan": None}]},
                    "app": {"records": [{"port": "trunk", "vlan": 20}]},
                    "provider": {"records": [{"port": "uplink", "vlan": None}]},
                },
                "routers": [
                    {
                        "name": "t1",
                        "tlr_id": 1,
                        "dr": {
                            "ports": [
                                {"instance": "web", "ip": "172.16.10.1/24", "mac": "02:00:00:10:00:01"},
                                {"instance": "app", "ip": "172.16.20.1/24", "mac": "02:00:00:20:00:01"},
                            ]
                        },
                        "sr": {
                            "ports": [{"instance": "provider", "ip": "203.0.113.1/24", "mac": "02:00:00:cb:00:01"}],
                            "routes": [{"prefix": "0.0.0.0/0", "via": "203.0.113.10"}],
                            "nat": {
                                "snat": [
                                    {
                                        "name": "tenants",
                                        "source": "172.16.0.0/16",
                                        "pool": ["203.0.113.64", "203.0.113.65"],
                                    }
                                ],
                                "dnat": [
                                    {
                                        "name": "t3-http",
                                        "public": "203.0.113.80",
                                        "proto": "tcp",
                                        "port": 8080,
                                        "to": "172.16.20.13",
                                        "to_port": 80,
                                    },
                                    {
                                        "name": "t3-dns",
                                        "public": "203.0.113.80",
                                        "proto": "udp",
                                        "port": 5353,
                                        "to": "172.16.20.13",
                                        "to_port": 5353,
                                    },
                                ],
                                "one_to_one": [
                                    {"name": "t2-public", "public": "203.0.113.90", "private": "172.16.10.12"}
                                ],
                                "max_sessions": 10000,
                            },
                            "firewall": {
                                "rules": [
                                    {
                                        "name": "no-telnet-out",
                                        "action": "reject",
                                        "direction": "out",
                                        "proto": "tcp",
                                        "dport": 23,
                                    }
                                ]
                            },
                        },
                        "transit": {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"},
                    }
                ],
            },
        }
    },
    # Router addresses the suites probe, by role.
    "routers": {
        "t1": {"tlr_id": 1, "dr": {"web": "172.16.10.1", "app": "172.16.20.1"}, "sr": {"uplink": "203.0.113.1"}}
    },
    "nat": {
        "pool": ["203.0.113.64", "203.0.113.65"],
        "dnat": {
            "t3-http": {"public": "203.0.113.80", "proto": "tcp", "port": 8080, "host": "t3", "to_port": 80},
            "t3-dns": {"public": "203.0.113.80", "proto": "udp", "port": 5353, "host": "t3", "to_port": 5353},
        },
        "one_to_one": {"t2": "203.0.113.90"},
        "firewall": {"rejected_out": {"proto": "tcp", "port": 23}},
    },
}


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
        self.addHost("ext1", cls=host_cls, ip=ext["ip"], mac=ext["mac"])
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
