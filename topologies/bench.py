"""bench: a traffic generator, one gateway, a sink — for forwarding benchmarks.

::

    gen ──── dut ──── sink
    192.0.2.0/24   198.51.100.0/24      flows to 203.0.113.0/24 are routed via sink

- ``gen`` runs trafgen (64-byte UDP at line rate or at a set rate).
- ``dut`` is the gateway under test: the reference gateway (instances
  ``left``/``right``, untagged; one router whose DR routes 203.0.113.0/24 to
  the sink) or, for the kernel baseline, the same node as a plain Linux
  router on the same veths, same addresses and MACs (``kernel`` below).
- ``sink`` counts what arrives (its interface counters); it owns
  198.51.100.2 and answers ARP, nothing else.

Many flows: destinations 203.0.113.1-250 and 1024 source ports; few flows:
4 destinations, one source port.
"""

from __future__ import annotations

import copy
from typing import Any

from mininet.topo import Topo

NAME = "bench"

DUT_LEFT_MAC = "02:00:00:bb:00:01"
DUT_RIGHT_MAC = "02:00:00:bb:00:02"

PLAN: dict[str, Any] = {
    "name": NAME,
    "description": "traffic generator, gateway, sink: forwarding benchmarks",
    "hosts": {
        "gen": {
            "ip": "192.0.2.2/24",
            "gw": "192.0.2.1",
            "vlan": None,
            "instance": "left",
            "node": "dut",
            "mac": "02:00:00:aa:00:02",
        },
        "sink": {
            "ip": "198.51.100.2/24",
            "gw": "198.51.100.1",
            "vlan": None,
            "instance": "right",
            "node": "dut",
            "mac": "02:00:00:cc:00:02",
        },
    },
    "flows_prefix": "203.0.113.0/24",
    "gateways": {
        "dut": {
            "ports": {
                "left": {"ifname": "dut-eth0", "peer": "gen", "role": "tenant"},
                "right": {"ifname": "dut-eth1", "peer": "sink", "role": "uplink"},
            },
            "instances": {
                "left": [{"port": "left", "vlan": None}],
                "right": [{"port": "right", "vlan": None}],
            },
            "routers": [
                {
                    "name": "r1",
                    "tlr_id": 1,
                    "dr": {
                        "ports": [
                            {"instance": "left", "ip": "192.0.2.1/24", "mac": DUT_LEFT_MAC},
                            {"instance": "right", "ip": "198.51.100.1/24", "mac": DUT_RIGHT_MAC},
                        ],
                        "routes": [{"prefix": "203.0.113.0/24", "via": "198.51.100.2"}],
                    },
                }
            ],
            # Settings of one DUT only (here the reference gateway's cache), by driver name.
            "dut": {"reference": {"cache": {"enabled": True, "capacity": 65536, "idle_timeout": 30}}},
            # The same router done by the node's kernel, for the baseline.
            "kernel": {
                "interfaces": {
                    "dut-eth0": {"ip": "192.0.2.1/24", "mac": DUT_LEFT_MAC},
                    "dut-eth1": {"ip": "198.51.100.1/24", "mac": DUT_RIGHT_MAC},
                },
                "routes": {"203.0.113.0/24": "198.51.100.2"},
            },
        }
    },
    "routers": {"r1": {"tlr_id": 1, "dr": {"left": "192.0.2.1", "right": "198.51.100.1"}}},
    "nat": {},
}


class BenchTopo(Topo):
    def build(self, plan: dict[str, Any] = PLAN, gateway_cls: Any = None, host_cls: Any = None) -> None:  # type: ignore[override]
        dut = self.addNode("dut", cls=gateway_cls)
        gen, sink = plan["hosts"]["gen"], plan["hosts"]["sink"]
        self.addHost("gen", cls=host_cls, ip=gen["ip"], mac=gen["mac"], defaultRoute=f"via {gen['gw']}")
        self.addHost("sink", cls=host_cls, ip=sink["ip"], mac=sink["mac"], defaultRoute=f"via {sink['gw']}")
        self.addLink("gen", dut)
        self.addLink(dut, "sink")


TOPO = BenchTopo

# -- what the dut does to the traffic -------------------------------------------------------
NAT_POOL = "198.51.100.100"
PATHS = {
    "routed": "the DR alone routes gen -> sink (one router, east-west work: l3 match)",
    "routed6": "the DR alone routes gen -> sink over IPv6 (2001:db8:a::/64 -> 2001:db8:f::/48 via the sink; "
    "l3v6 match)",
    "nat": f"DR -> transit -> SR, which routes and SNATs gen's addresses to {NAT_POOL} "
    "(north-south work: conntrack, NAT, l4 match)",
}


# The reference gives each session a public (address, port) of its own (``nat.snat``), and a
# connection closed by an RST keeps its port for ``tcp_closed`` (10 s): one address holds
# 64,512 sessions.  Benches that make sessions by the million use this pool instead (the
# kernel and Open vSwitch reuse a port towards other destinations: one address is room enough
# for them, and the ovs DUT takes the same range from the plan).
ROOMY_POOL = [f"198.51.100.{100 + i}" for i in range(20)]  # 20 x 64,512 ports: 1M sessions a protocol


def with_room_for_sessions(plan: dict[str, Any], sessions: int = 2_000_000) -> dict[str, Any]:
    """The ``nat`` path's plan with room for ``sessions`` in the reference's pool, its router's
    quota and the node's bound, so that a bench measures a rate, not the table's or the
    pool's size (changed in place)."""
    dut = plan["gateways"]["dut"]
    router = dut["routers"][0]
    router["nat"]["snat"][0]["pool"] = list(ROOMY_POOL)
    router["nat"]["max_sessions"] = sessions
    dut["dut"]["reference"].setdefault("tables", {})["sessions_max"] = sessions
    return plan


def plan_for(path: str, io: str = "socket") -> dict[str, Any]:
    """The bench plan for one path (see ``PATHS``) and gateway port I/O, as a new dict.

    ``nat`` moves the sink side of router r1 from its DR to an SR with an SNAT
    rule; the kernel baseline does the same with an nftables SNAT rule and the
    kernel's conntrack.
    """
    if path not in PATHS:
        raise ValueError(f"unknown bench path {path!r}; paths: {', '.join(PATHS)}")
    plan = copy.deepcopy(PLAN)
    dut = plan["gateways"]["dut"]
    dut["dut"]["reference"]["io"] = io
    if path == "routed6":
        # The same router, dual stack: the traffic and the ping probe are IPv6.
        plan["hosts"]["gen"].update(ip6="2001:db8:a::2/64", gw6="2001:db8:a::1")
        plan["hosts"]["sink"].update(ip6="2001:db8:c::2/64", gw6="2001:db8:c::1")
        left, right = dut["routers"][0]["dr"]["ports"]
        left["ip6"], right["ip6"] = "2001:db8:a::1/64", "2001:db8:c::1/64"
        dut["routers"][0]["dr"]["routes"].append({"prefix": "2001:db8:f::/48", "via": "2001:db8:c::2"})
        dut["kernel"]["interfaces"]["dut-eth0"]["ip6"] = "2001:db8:a::1/64"
        dut["kernel"]["interfaces"]["dut-eth1"]["ip6"] = "2001:db8:c::1/64"
        dut["kernel"]["routes"]["2001:db8:f::/48"] = "2001:db8:c::2"
        plan["family"] = 6
    if path == "nat":
        router = dut["routers"][0]
        left, right = router["dr"]["ports"]
        router["dr"] = {"ports": [left]}
        router["sr"] = {"ports": [right], "routes": [{"prefix": "203.0.113.0/24", "via": "198.51.100.2"}]}
        router["nat"] = {
            "snat": [{"name": "bench", "source": "192.0.2.0/24", "pool": [NAT_POOL]}],
            "max_sessions": 60000,
        }
        router["transit"] = {"subnet": "169.254.0.0/28", "dr": "169.254.0.1", "sr": "169.254.0.2"}
        dut["kernel"]["snat"] = {"source": "192.0.2.0/24", "out": "dut-eth1", "to": NAT_POOL}
    return plan
