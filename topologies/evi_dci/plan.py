"""evi-dci's address plan: three sites, their edges' intent, the IP core between them.

The one source of addresses; suites read it, DUT drivers render each edge's
part (``gateways.edgeN``) into their own configuration.
"""

from __future__ import annotations

from typing import Any

NAME = "evi-dci"

NETID_V100 = 5100  # the EVI network id of the extended VLAN 100
# The core's MTU on each site's link: room for a full tenant frame and the 28 bytes of
# tunnel overhead (1514 + 28) at sites 1 and 2; site 3's link is smaller, so full-size
# frames to and from site 3 do not fit (dropped and counted, never fragmented).
CORE_MTU = {1: 1600, 2: 1600, 3: 1400}
# The edges: name -> (site, the third byte of its core subnet 10.255.N.0/24).  Site 2 has
# two edges (multihoming): one appointed forwarder per extended instance, the other on standby.
EDGES = {"edge1": (1, 1), "edge2": (2, 2), "edge2b": (2, 22), "edge3": (3, 3)}


def _host(site: int, vlan: int, instance: str, switch: str, mac: str, ip: str) -> dict[str, Any]:
    return {
        "ip": ip,
        "gw": None,
        "vlan": vlan,
        "instance": instance,
        "node": f"edge{site}",
        "switch": switch,
        "site": site,
        "mac": mac,
    }


def _edge(name: str) -> dict[str, Any]:
    """One edge: a trunk to its site switch (VLANs 100, 200), a port on the core."""
    site, net = EDGES[name]
    ports: dict[str, Any] = {
        "trunk": {"ifname": f"{name}-eth0", "peer": f"sw{site}", "role": "tenant"},
        "core": {"ifname": f"{name}-eth1", "peer": "core", "role": "core"},
    }
    instances: dict[str, Any] = {
        "v100": [{"port": "trunk", "vlan": 100}],  # extended to the other sites
        "v200": [{"port": "trunk", "vlan": 200}],  # local to this site
    }
    if name == "edge1":
        # The same VLAN id on another port is another instance, never extended.
        ports["other"] = {"ifname": "edge1-eth2", "peer": "sw1x", "role": "tenant"}
        instances["other"] = [{"port": "other", "vlan": 100}]
    return {
        "ports": ports,
        "instances": instances,
        "evi": {
            "site": site,
            "port": "core",
            "address": f"10.255.{net}.1/24",
            "gateway": f"10.255.{net}.254",
            "mtu": CORE_MTU[site],
            "instances": {"v100": NETID_V100},
            # No per-pair links: each edge registers with the discovery servers (sites 1
            # and 2, for redundancy) and learns the other sites from them.
            "key": "evi-dci-demo-key",  # authenticates discovery and MAC advertisement
            "discovery": {
                "servers": ["10.255.1.1", "10.255.2.1"],
                "interval": 0.5,
                "hold": 2.0,
            },
        },
    }


PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "three data-centre sites, VLAN 100 extended between them by EVI (MAC-in-GRE), VLAN 200 local",
    "try": ["h1a ping -c1 10.100.0.13", "h1b ping -c1 10.200.0.22", "core tcpdump -ni core-eth0 -c4 ip proto 47"],
    "hosts": {
        **{f"h{n}a": _host(n, 100, "v100", f"sw{n}", f"02:00:0e:0{n}:01:00", f"10.100.0.1{n}/24") for n in (1, 2, 3)},
        **{f"h{n}b": _host(n, 200, "v200", f"sw{n}", f"02:00:0e:0{n}:02:00", f"10.200.0.2{n}/24") for n in (1, 2, 3)},
        "x1": _host(1, 100, "other", "sw1x", "02:00:0e:01:03:00", "10.100.0.31/24"),
        # The IP core: one router, a /24 to each site's edge.
        "core": {
            "ip": "10.255.1.254/24",
            "gw": None,
            "vlan": None,
            "instance": None,
            "node": None,
            "mac": "02:00:0e:ff:00:01",
            "router": True,
            "core_links": {name: f"10.255.{net}.254/24" for name, (_site, net) in EDGES.items()},
        },
    },
    "links": [{"between": ["core", name], "mtu": CORE_MTU[site]} for name, (site, _net) in EDGES.items()],
    "switches": {
        **{
            f"sw{n}": {"access": {f"h{n}a": 100, f"h{n}b": 200}, "trunks": [e for e, (s, _) in EDGES.items() if s == n]}
            for n in (1, 2, 3)
        },
        "sw1x": {"access": {"x1": 100}, "trunks": ["edge1"]},
    },
    "gateways": {name: _edge(name) for name in EDGES},
    "evi": {"network_ids": {"v100": NETID_V100}, "core_mtu": CORE_MTU, "site_edges": {2: ["edge2", "edge2b"]}},
}
