"""edge-basic's address plan: the hosts, the switch, and the gateway's intent.

The one source of addresses; suites read it, DUT drivers render the
gateway's part into their own configuration.
"""

from __future__ import annotations

from typing import Any

NAME = "edge-basic"

PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "one edge gateway with NAT and firewall, tenants on VLANs 10 and 20, a provider router and host;"
    " dual stack (IPv6 routed, not translated)",
    "try": ["t1 ping -c1 203.0.113.10", "t1 ping -c1 -t1 203.0.113.10", "ext2 ping -c1 203.0.113.90"],
    "hosts": {
        "t1": {
            "ip": "172.16.10.11/24",
            "gw": "172.16.10.1",
            "ip6": "2001:db8:0:10::11/64",  # its IPv6 default router comes from router advertisements
            "vlan": 10,
            "instance": "web",
            "node": "edge1",
            "switch": "s1",
            "mac": "02:00:00:10:00:11",
        },
        "t2": {
            "ip": "172.16.10.12/24",
            "gw": "172.16.10.1",
            "ip6": "2001:db8:0:10::12/64",
            "vlan": 10,
            "instance": "web",
            "node": "edge1",
            "switch": "s1",
            "mac": "02:00:00:10:00:12",
        },
        "t3": {
            "ip": "172.16.20.13/24",
            "gw": "172.16.20.1",
            "ip6": "2001:db8:0:20::13/64",
            "vlan": 20,
            "instance": "app",
            "node": "edge1",
            "switch": "s1",
            "mac": "02:00:00:20:00:13",
        },
        "t4": {
            "ip": "172.16.10.14/24",
            "gw": "172.16.10.1",
            "ip6": "2001:db8:0:10::14/64",
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
            "ip6": "2001:db8:cb::10/64",
            "ip6_2": "2001:db8:c6::1/64",
            # IPv6 is not translated: the provider routes the tenants' prefixes to the SR.
            "routes": {"2001:db8::/56": "2001:db8:cb::1"},
            # The provider router speaks BGP (FRR) with the SR: it announces a provider
            # prefix (192.0.2.0/24, an address of it on lo) and learns the SR's public addresses.
            "bgp": {
                "asn": 64500,
                "neighbors": [{"address": "203.0.113.1", "asn": 64501}],
                "networks": ["192.0.2.0/24"],
                "loopback": "192.0.2.1/24",
            },
        },
        "ext2": {
            "ip": "198.51.100.10/24",
            "gw": "198.51.100.1",
            "ip6": "2001:db8:c6::10/64",
            "gw6": "2001:db8:c6::1",
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
            # The gateway's intent: what any gateway in this position must do, in no
            # gateway's own syntax (DUT drivers render it: suites/duts/).
            "ports": {
                "trunk": {"ifname": "edge1-eth0", "peer": "s1", "role": "tenant"},
                "uplink": {"ifname": "edge1-eth1", "peer": "ext1", "role": "uplink"},
                "access": {"ifname": "edge1-eth2", "peer": "t4", "role": "tenant"},
            },
            # (port, VLAN) -> instance; VLAN None: untagged.
            "instances": {
                "web": [{"port": "trunk", "vlan": 10}, {"port": "access", "vlan": None}],
                "app": [{"port": "trunk", "vlan": 20}],
                "provider": [{"port": "uplink", "vlan": None}],
            },
            "routers": [
                {
                    "name": "t1",
                    "tlr_id": 1,
                    # East-west between the tenant's segments (the DR) ...
                    "dr": {
                        "ports": [
                            {
                                "instance": "web",
                                "ip": "172.16.10.1/24",
                                "ip6": "2001:db8:0:10::1/64",
                                "mac": "02:00:00:10:00:01",
                            },
                            {
                                "instance": "app",
                                "ip": "172.16.20.1/24",
                                "ip6": "2001:db8:0:20::1/64",
                                "mac": "02:00:00:20:00:01",
                            },
                        ]
                    },
                    # ... and to the provider, with the services (the SR), joined by a transit subnet.
                    "sr": {
                        "ports": [
                            {
                                "instance": "provider",
                                "ip": "203.0.113.1/24",
                                "ip6": "2001:db8:cb::1/64",
                                "mac": "02:00:00:cb:00:01",
                            }
                        ],
                        "routes": [
                            {"prefix": "0.0.0.0/0", "via": "203.0.113.10"},
                            {"prefix": "::/0", "via": "2001:db8:cb::10"},
                        ],
                    },
                    "transit": {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"},
                    "nat": {
                        "snat": [
                            {"name": "tenants", "source": "172.16.0.0/16", "pool": ["203.0.113.64", "203.0.113.65"]}
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
                            {
                                "name": "t3-ftp",
                                "public": "203.0.113.80",
                                "proto": "tcp",
                                "port": 21,
                                "to": "172.16.20.13",
                                "to_port": 21,
                            },
                        ],
                        "one_to_one": [{"name": "t2-public", "public": "203.0.113.90", "private": "172.16.10.12"}],
                        "max_sessions": 10000,
                    },
                    # Rules in order; then tenant-initiated traffic is allowed and
                    # unsolicited inbound traffic dropped unless NAT forwards it.
                    "firewall": [
                        {"name": "no-telnet-out", "action": "reject", "direction": "out", "proto": "tcp", "dport": 23}
                    ],
                }
            ],
            # BGP with the provider router: the SR learns the provider's prefixes and announces
            # its public NAT addresses (static routes stay: the default route is configured).
            "bgp": {
                "router": "t1",
                "asn": 64501,
                "neighbors": [{"address": "203.0.113.10", "asn": 64500}],
                "announce": ["203.0.113.64/31", "203.0.113.80/32", "203.0.113.90/32"],
            },
            # In-band management: an address on the uplink, sharing the NIC with tenant traffic,
            # reaching the gateway's management service from the provider's 198.51.100.0/24 only.
            "management": {
                "router": "t1",
                "address": "203.0.113.5/24",
                "allow": ["198.51.100.0/24"],
                "ports": [{"proto": "tcp", "port": 8080}, {"proto": "icmp"}],
            },
            # DHCP from the tenant segments is relayed to the server on t3 (app), option 82 telling
            # it which (port, VLAN) record each client came in on.
            "dhcp_relay": {"server": "172.16.20.13"},
            # FTP through NAT: an application-level gateway reads the control connections to
            # servers' port 21 (active mode from tenants behind SNAT, passive mode to t3's
            # server behind the t3-ftp port forward).
            "ftp_alg": {"ports": [21]},
            # The reference gateway also gives router t1's SR a namespace of its own on its kernel
            # transport (the SR's addresses, for control-plane daemons).
            "dut": {"reference": {"kernel": {"tlrs": ["t1"]}, "tables": {"mac_per_instance": 256}}},
        }
    },
    # Router addresses the suites probe, by role.
    "routers": {
        "t1": {
            "tlr_id": 1,
            "dr": {"web": "172.16.10.1", "app": "172.16.20.1"},
            "sr": {"uplink": "203.0.113.1"},
            # Dual stack: the same ports' IPv6 addresses (tenants' 2001:db8::/56 routed, not translated).
            "dr6": {"web": "2001:db8:0:10::1", "app": "2001:db8:0:20::1"},
            "sr6": {"uplink": "2001:db8:cb::1"},
        }
    },
    "nat": {
        "pool": ["203.0.113.64", "203.0.113.65"],
        "dnat": {
            "t3-http": {"public": "203.0.113.80", "proto": "tcp", "port": 8080, "host": "t3", "to_port": 80},
            "t3-dns": {"public": "203.0.113.80", "proto": "udp", "port": 5353, "host": "t3", "to_port": 5353},
            "t3-ftp": {"public": "203.0.113.80", "proto": "tcp", "port": 21, "host": "t3", "to_port": 21},
        },
        "one_to_one": {"t2": "203.0.113.90"},
        "firewall": {"rejected_out": {"proto": "tcp", "port": 23}},
    },
}
