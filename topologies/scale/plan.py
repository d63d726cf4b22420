"""scale's address plan, for any number of tenants, hosts per tenant and edges.

Tenant ``i`` (0-based) is a logical router ``t<i>`` of its own on edge
``i % edges``: VLAN ``100 + i`` on its edge's trunk, segment
``10.<i // 256>.<i % 256>.0/24`` (gateway ``.1``, hosts ``.11``, ``.12``, ...),
an SR with its own address on the provider segment 100.64.0.0/16
(``uplink(i)``: 100.64.1.0 + i) and its own SNAT address there
(``public(i)``: 100.64.128.0 + i), so the provider host ``ext1``
(100.64.0.1) reaches every tenant's public address on-link.  Hosts are ``h<i>x<j>`` (tenant i, host j).
"""

from __future__ import annotations

import ipaddress
from typing import Any

NAME = "scale"
DEFAULTS = {"tenants": 4, "hosts": 2, "edges": 1}
UPLINK = ipaddress.IPv4Network("100.64.0.0/16")  # the provider segment (shared address space, RFC 6598)
EXT1 = "100.64.0.1"


def segment(i: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{i // 256}.{i % 256}.0/24")


def uplink(i: int) -> str:
    """Tenant ``i``'s SR address on the provider segment."""
    return str(UPLINK.network_address + 256 + i)


def public(i: int) -> str:
    """Tenant ``i``'s SNAT address, on the provider segment too (the SR answers ARP for it)."""
    return str(UPLINK.network_address + 128 * 256 + i)


def host_name(i: int, j: int) -> str:
    return f"h{i}x{j}"


def _mac(kind: int, i: int, j: int) -> str:
    return f"02:{kind:02x}:{i >> 8:02x}:{i & 0xFF:02x}:{j >> 8:02x}:{j & 0xFF:02x}"


def plan_for(tenants: int = 4, hosts: int = 2, edges: int = 1) -> dict[str, Any]:
    """The plan of ``tenants`` tenants with ``hosts`` hosts each, spread over ``edges`` edges."""
    if not 1 <= tenants <= 1024:
        raise ValueError(f"scale: tenants must be 1-1024, not {tenants}")
    if not 1 <= hosts <= 200:
        raise ValueError(f"scale: hosts per tenant must be 1-200, not {hosts}")
    if not 1 <= edges <= min(tenants, 16):
        raise ValueError(f"scale: edges must be 1-{min(tenants, 16)} (at most one per tenant), not {edges}")
    host_specs: dict[str, Any] = {}
    gateways: dict[str, Any] = {}
    for e in range(edges):
        gateways[f"edge{e + 1}"] = {
            "ports": {
                "trunk": {"ifname": f"edge{e + 1}-eth0", "peer": "s1", "role": "tenant"},
                "uplink": {"ifname": f"edge{e + 1}-eth1", "peer": "s2", "role": "uplink"},
            },
            "instances": {"provider": [{"port": "uplink", "vlan": None}]},
            "routers": [],
        }
    for i in range(tenants):
        edge = f"edge{i % edges + 1}"
        net = segment(i)
        gw_ip = str(net.network_address + 1)
        inst = f"t{i}"
        for j in range(hosts):
            host_specs[host_name(i, j)] = {
                "ip": f"{net.network_address + 11 + j}/24",
                "gw": gw_ip,
                "vlan": 100 + i,
                "instance": inst,
                "node": edge,
                "switch": "s1",
                "mac": _mac(0x10, i, j),
            }
        g = gateways[edge]
        g["instances"][inst] = [{"port": "trunk", "vlan": 100 + i}]
        g["routers"].append(
            {
                "name": inst,
                "tlr_id": i + 1,
                "dr": {"ports": [{"instance": inst, "ip": f"{gw_ip}/24", "mac": _mac(0x20, i, 1)}]},
                "sr": {
                    "ports": [
                        {"instance": "provider", "ip": f"{uplink(i)}/{UPLINK.prefixlen}", "mac": _mac(0x20, i, 2)}
                    ],
                    "routes": [{"prefix": "0.0.0.0/0", "via": EXT1}],
                },
                "transit": {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"},
                "nat": {"snat": [{"name": f"{inst}-out", "source": str(net), "pool": [public(i)]}]},
                "firewall": [],
            }
        )
    host_specs["ext1"] = {
        "ip": f"{EXT1}/{UPLINK.prefixlen}",
        "gw": None,
        "vlan": None,
        "instance": "provider",
        "node": None,
        "switch": "s2",
        "mac": "02:00:00:64:00:01",
    }
    access = {name: h["vlan"] for name, h in host_specs.items() if h.get("switch") == "s1"}
    return {
        "name": NAME,
        "description": f"{tenants} tenants x {hosts} hosts on {edges} edge(s), one logical router each, "
        "SNAT to an address of its own, a provider host",
        "params": {"tenants": tenants, "hosts": hosts, "edges": edges},
        "try": [f"{host_name(0, 0)} ping -c1 {EXT1}", f"{host_name(tenants - 1, hosts - 1)} ping -c1 {EXT1}"],
        "hosts": host_specs,
        "switches": {
            "s1": {"access": access, "trunks": [f"edge{e + 1}" for e in range(edges)]},
            "s2": {"access": {}, "trunks": []},
        },
        "gateways": gateways,
        "routers": {
            f"t{i}": {
                "tlr_id": i + 1,
                "dr": {f"t{i}": str(segment(i).network_address + 1)},
                "sr": {"uplink": uplink(i)},
            }
            for i in range(tenants)
        },
        "nat": {},
    }


PLAN = plan_for(**DEFAULTS)
