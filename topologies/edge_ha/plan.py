"""edge-ha's address plan: hosts, switches, and the intent of hv1 (DR) and the two SR edges."""

from __future__ import annotations

from typing import Any

NAME = "edge-ha"


def _sr(
    node: str,
    transit_ip: str,
    transit_mac: str,
    uplink_ip: str,
    uplink_mac: str,
    peer_transit: str,
    peer_uplink: str,
    med: int,
    peer_publics: list[str],
    v6: tuple[str, str, str, str],
) -> dict[str, Any]:
    """The intent of one SR edge: its transit and uplink addresses, its peer's; its BGP session
    with the provider router announces the tenant prefixes with ``med`` (the standby's higher:
    the provider prefers the active while both are up).  Both SRs have the same NAT and the
    stateful firewall's default policy; the public NAT addresses are the active SR's (edge1's):
    the standby lists them as its peer's ``publics``, answers for them only once it took over.
    ``v6``: its own transit and uplink IPv6 addresses, its peer's (dual stack: routed, not
    translated; taken over with the IPv4 ones)."""
    transit6, uplink6, peer_transit6, peer_uplink6 = v6
    return {
        "ports": {
            "transit": {"ifname": f"{node}-eth0", "peer": "st", "role": "transit"},
            "uplink": {"ifname": f"{node}-eth1", "peer": "sp", "role": "uplink"},
        },
        "instances": {
            "transit": [{"port": "transit", "vlan": None}],
            "provider": [{"port": "uplink", "vlan": None}],
        },
        "routers": [
            {
                "name": "t1",
                "tlr_id": 1,
                "sr": {
                    "ports": [
                        {"instance": "provider", "ip": f"{uplink_ip}/24", "ip6": f"{uplink6}/64", "mac": uplink_mac}
                    ],
                    "routes": [
                        {"prefix": "0.0.0.0/0", "via": "203.0.113.254"},
                        {"prefix": "172.16.0.0/16", "via": "169.254.0.1"},
                        {"prefix": "::/0", "via": "2001:db8:cb::fe"},
                        {"prefix": "2001:db8::/56", "via": "fd00:a9fe::1"},
                    ],
                },
                "transit": {
                    "subnet": "169.254.0.0/28",
                    "dr": "169.254.0.1",
                    "sr": transit_ip,
                    "instance": "transit",
                    "sr_mac": transit_mac,
                    "subnet6": "fd00:a9fe::/64",
                    "dr6": "fd00:a9fe::1",
                    "sr6": transit6,
                },
                "nat": {
                    "snat": [{"name": "tenants", "source": "172.16.0.0/16", "pool": ["203.0.113.10"]}],
                    "dnat": [
                        {
                            "name": "t2-http",
                            "public": "203.0.113.11",
                            "proto": "tcp",
                            "port": 8080,
                            "to": "172.16.20.12",
                            "to_port": 80,
                        }
                    ],
                },
                "firewall": [],
                # The peer SR: watched with BFD; on its failure its addresses move here.  The two
                # replicate their connections (conntrack entries, NAT sessions) to each other.
                "ha": {
                    "peers": [
                        {
                            "transit": peer_transit,
                            "addresses": [peer_uplink, peer_uplink6, peer_transit6],
                            "publics": peer_publics,
                        }
                    ],
                    # BFD with the provider router too: it learns at once when this SR dies.
                    "bfd": {"tx_ms": 100, "rx_ms": 100, "mult": 3, "neighbors": ["203.0.113.254", "2001:db8:cb::fe"]},
                    "preempt": True,
                },
            }
        ],
        # Both SRs peer with the provider router all the time: the standby's session and the
        # routes it learned are there before a failover.
        "bgp": {
            "router": "t1",
            "asn": 64501,
            "neighbors": [{"address": "203.0.113.254", "asn": 64500}, {"address": "2001:db8:cb::fe", "asn": 64500}],
            "announce": ["172.16.0.0/16", "2001:db8::/56"],
            "med": med,
        },
        "dut": {"reference": {"kernel": {"tlrs": ["t1"]}}},
    }


PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "DR node, transit switch, two SR edges with BFD failover, provider router",
    "try": ["t1 ping -c1 198.51.100.10"],
    "hosts": {
        "t1": {
            "ip": "172.16.10.11/24",
            "gw": "172.16.10.1",
            "ip6": "2001:db8:0:10::11/64",  # its IPv6 default router comes from the DR's RAs
            "vlan": None,
            "instance": "web",
            "node": "hv1",
            "mac": "02:00:01:10:00:11",
        },
        "t2": {
            "ip": "172.16.20.12/24",
            "gw": "172.16.20.1",
            "ip6": "2001:db8:0:20::12/64",
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
            "ip6": "2001:db8:cb::fe/64",
            "ip6_2": "2001:db8:c6::1/64",
            # FRR on the provider router (zebra, staticd, bgpd). The tenant prefixes are learned by
            # BGP from both SRs, over IPv4 and over IPv6 (the active's MED is lower); a floating
            # static (distance 250) stands in for a gateway that speaks no BGP.  IPv6 is routed,
            # not translated: 2001:db8::/56 to edge1's uplink address (edge2's while it holds it).
            "frr_routes": {"172.16.0.0/16": "203.0.113.1 250", "2001:db8::/56": "2001:db8:cb::1 250"},
            "bgp": {
                "asn": 64500,
                "neighbors": [
                    {"address": "203.0.113.1", "asn": 64501},
                    {"address": "203.0.113.2", "asn": 64501},
                    {"address": "2001:db8:cb::1", "asn": 64501},
                    {"address": "2001:db8:cb::2", "asn": 64501},
                ],
                "networks": ["192.0.2.0/24", "2001:db8:100::/48"],
                "loopback": "192.0.2.1/24",
            },
            "lo6": "2001:db8:100::1/48",  # inside the IPv6 prefix it announces
            # FRR's bfdd watches both SRs' uplink addresses, IPv4 and IPv6 (their HA agents
            # answer through their datapaths, as they do for each other).
            "bfd": {
                "local": "203.0.113.254",
                "local6": "2001:db8:cb::fe",
                "peers": ["203.0.113.1", "203.0.113.2", "2001:db8:cb::1", "2001:db8:cb::2"],
                "interval_ms": 100,
                "mult": 3,
            },
        },
        "ext1": {
            "ip": "198.51.100.10/24",
            "gw": "198.51.100.1",
            "ip6": "2001:db8:c6::10/64",
            "gw6": "2001:db8:c6::1",
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
        "sr6": {"edge1": "fd00:a9fe::2", "edge2": "fd00:a9fe::3"},
        "mac": {"hv1": "02:00:01:a9:00:01", "edge1": "02:00:01:a9:00:02", "edge2": "02:00:01:a9:00:03"},
    },
    "uplinks": {"edge1": "203.0.113.1", "edge2": "203.0.113.2"},
    "uplinks6": {"edge1": "2001:db8:cb::1", "edge2": "2001:db8:cb::2"},
    "gateways": {
        "hv1": {
            "ports": {
                "web": {"ifname": "hv1-eth0", "peer": "t1", "role": "tenant"},
                "app": {"ifname": "hv1-eth1", "peer": "t2", "role": "tenant"},
                "transit": {"ifname": "hv1-eth2", "peer": "st", "role": "transit"},
            },
            "instances": {
                "web": [{"port": "web", "vlan": None}],
                "app": [{"port": "app", "vlan": None}],
                "transit": [{"port": "transit", "vlan": None}],
            },
            "routers": [
                {
                    "name": "t1",
                    "tlr_id": 1,
                    "dr": {
                        "ports": [
                            {
                                "instance": "web",
                                "ip": "172.16.10.1/24",
                                "ip6": "2001:db8:0:10::1/64",
                                "mac": "02:00:01:10:00:01",
                            },
                            {
                                "instance": "app",
                                "ip": "172.16.20.1/24",
                                "ip6": "2001:db8:0:20::1/64",
                                "mac": "02:00:01:20:00:01",
                            },
                        ]
                    },
                    # Everything else goes to the SRs' transit address (edge1's; edge2's on failover).
                    "transit": {
                        "subnet": "169.254.0.0/28",
                        "dr": "169.254.0.1",
                        "instance": "transit",
                        "peers": ["169.254.0.2"],
                        "dr_mac": "02:00:01:a9:00:01",
                        "subnet6": "fd00:a9fe::/64",
                        "dr6": "fd00:a9fe::1",
                        "peers6": ["fd00:a9fe::2"],
                    },
                }
            ],
        },
        "edge1": _sr(
            "edge1",
            "169.254.0.2",
            "02:00:01:a9:00:02",
            "203.0.113.1",
            "02:00:01:cb:00:01",
            "169.254.0.3",
            "203.0.113.2",
            100,
            [],
            ("fd00:a9fe::2", "2001:db8:cb::1", "fd00:a9fe::3", "2001:db8:cb::2"),
        ),
        "edge2": _sr(
            "edge2",
            "169.254.0.3",
            "02:00:01:a9:00:03",
            "203.0.113.2",
            "02:00:01:cb:00:02",
            "169.254.0.2",
            "203.0.113.1",
            200,
            ["203.0.113.10", "203.0.113.11"],
            ("fd00:a9fe::3", "2001:db8:cb::2", "fd00:a9fe::2", "2001:db8:cb::1"),
        ),
    },
    "routers": {
        "t1": {"tlr_id": 1, "dr": {"web": "172.16.10.1", "app": "172.16.20.1"}, "sr": {"uplink": "203.0.113.1"}}
    },
    "nat": {
        "pool": ["203.0.113.10"],
        "dnat": {"t2-http": {"public": "203.0.113.11", "proto": "tcp", "port": 8080, "host": "t2", "to_port": 80}},
    },
}
