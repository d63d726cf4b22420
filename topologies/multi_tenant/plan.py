"""multi-tenant's address plan: two tenants with the same subnets behind one edge.

The one source of addresses; suites read it, DUT drivers render the
gateway's part into their own configuration.
"""

from __future__ import annotations

from typing import Any

NAME = "multi-tenant"


def _host(ip: str, gw: str, vlan: int, instance: str, mac: str) -> dict[str, Any]:
    return {"ip": ip, "gw": gw, "vlan": vlan, "instance": instance, "node": "edge1", "switch": "s1", "mac": mac}


def _router(name: str, tlr: int, tag: int, sr_ip: str, pool: str, sessions: int) -> dict[str, Any]:
    """A tenant's logical router: the same segments (10.0.1.0/24, 10.0.2.0/24) and transit subnet
    as the other tenant's, its own MACs, uplink address and NAT pool; no static routes to the
    provider: what it reaches there it learned by BGP."""
    return {
        "name": name,
        "tlr_id": tlr,
        "dr": {
            "ports": [
                {"instance": f"{name}-web", "ip": "10.0.1.1/24", "mac": f"02:00:00:{tag:02x}:01:01"},
                {"instance": f"{name}-app", "ip": "10.0.2.1/24", "mac": f"02:00:00:{tag:02x}:02:01"},
            ]
        },
        "sr": {"ports": [{"instance": "provider", "ip": f"{sr_ip}/24", "mac": f"02:00:00:{tag:02x}:cb:01"}]},
        "transit": {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"},
        "nat": {
            "snat": [{"name": f"{name}-out", "source": "10.0.0.0/16", "pool": [pool]}],
            "dnat": [
                {
                    "name": f"{name}-web",
                    "public": pool,
                    "proto": "tcp",
                    "port": 8080,
                    "to": "10.0.1.11",
                    "to_port": 80,
                }
            ],
            "max_sessions": sessions,
        },
        "firewall": [],
    }


PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "one edge, two tenant routers with the same subnets (blue, red), each with its own SR, "
    "NAT pool and BGP session with the provider router",
    "try": ["a1 ping -c1 192.0.2.1", "b1 ping -c1 192.0.2.1", "a1 ping -c1 10.0.2.12"],
    "hosts": {
        # The same addresses in both tenants: only the VLAN (the instance) tells them apart.
        "a1": _host("10.0.1.11/24", "10.0.1.1", 10, "blue-web", "02:00:00:0a:01:11"),
        "a2": _host("10.0.2.12/24", "10.0.2.1", 11, "blue-app", "02:00:00:0a:02:12"),
        "b1": _host("10.0.1.11/24", "10.0.1.1", 20, "red-web", "02:00:00:0b:01:11"),
        "b2": _host("10.0.2.12/24", "10.0.2.1", 21, "red-app", "02:00:00:0b:02:12"),
        "ext1": {
            "ip": "203.0.113.10/24",
            "gw": None,
            "vlan": None,
            "instance": "provider",
            "node": "edge1",
            "mac": "02:00:00:cb:00:10",
            "router": True,
            "ip2": "198.51.100.1/24",
            # One BGP session per tenant SR; it announces 192.0.2.0/24 (an address of it on lo)
            # and learns each tenant's NAT pool from that tenant's session.
            "bgp": {
                "asn": 64500,
                "neighbors": [{"address": "203.0.113.2", "asn": 64501}, {"address": "203.0.113.3", "asn": 64502}],
                "networks": ["192.0.2.0/24"],
                "loopback": "192.0.2.1/24",
            },
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
    "switches": {"s1": {"access": {"a1": 10, "a2": 11, "b1": 20, "b2": 21}, "trunks": ["edge1"]}},
    "gateways": {
        "edge1": {
            "ports": {
                "trunk": {"ifname": "edge1-eth0", "peer": "s1", "role": "tenant"},
                "uplink": {"ifname": "edge1-eth1", "peer": "ext1", "role": "uplink"},
            },
            "instances": {
                "blue-web": [{"port": "trunk", "vlan": 10}],
                "blue-app": [{"port": "trunk", "vlan": 11}],
                "red-web": [{"port": "trunk", "vlan": 20}],
                "red-app": [{"port": "trunk", "vlan": 21}],
                "provider": [{"port": "uplink", "vlan": None}],
            },
            "routers": [
                # blue's quota of connections is small: the SYN-flood test fills it.
                _router("blue", 1, 0x0A, "203.0.113.2", "203.0.113.64", 2000),
                _router("red", 2, 0x0B, "203.0.113.3", "203.0.113.72", 10000),
            ],
            "bgp": [
                {
                    "router": "blue",
                    "asn": 64501,
                    "neighbors": [{"address": "203.0.113.10", "asn": 64500}],
                    "announce": ["203.0.113.64/32"],
                },
                {
                    "router": "red",
                    "asn": 64502,
                    "neighbors": [{"address": "203.0.113.10", "asn": 64500}],
                    "announce": ["203.0.113.72/32"],
                },
            ],
            "dut": {"reference": {"kernel": {"tlrs": ["blue", "red"]}}},
        }
    },
    "routers": {
        "blue": {"tlr_id": 1, "dr": {"web": "10.0.1.1", "app": "10.0.2.1"}, "sr": {"uplink": "203.0.113.2"}},
        "red": {"tlr_id": 2, "dr": {"web": "10.0.1.1", "app": "10.0.2.1"}, "sr": {"uplink": "203.0.113.3"}},
    },
    "tenants": {
        "blue": {"hosts": ["a1", "a2"], "pool": "203.0.113.64"},
        "red": {"hosts": ["b1", "b2"], "pool": "203.0.113.72"},
    },
}
