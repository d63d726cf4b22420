"""The ``kernel`` section: the user-kernel transport of a gateway node.

Where this sits: read by the node schema (``schema.py``) after the routers,
so it can name them.  Schema::

    kernel:
      tap: edge1-kni                 # the TAP the datapath opens (default: <node>-kni)
      tlrs: [t1]                     # routers whose SR addresses get a namespace of their own
      bgp:                           # FRR in a TLR namespace: its routes reach the SR's FIB by FPM
        - router: t1                 # (a router of tlrs)
          asn: 64501
          neighbors: [{address: 203.0.113.10, asn: 64500}, {address: "2001:db8:cb::fe", asn: 64500}]
          announce: [203.0.113.64/31, "2001:db8::/56"]   # either family; an IPv6 neighbor carries IPv6
          med: 100                   # optional: the MED it announces with (an HA standby: a higher one)
          timers: {keepalive: 1, hold: 3}
      management:                    # in-band management on an SR's segment
        router: t1
        address: 203.0.113.5/24      # answered (ARP) by the datapath, on the SR's segment holding it
        allow: [198.51.100.0/24]     # source prefixes that may reach it
        ports: [{proto: tcp, port: 8080}, {proto: icmp}]   # what reaches the namespace; the rest is refused

Frames to the kernel carry the TLR id as their 802.1Q tag; the management
namespace has the tag ``MANAGEMENT_TAG`` (no router may use that id then).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from gateway.config.reader import Reader

MANAGEMENT_TAG = 4094
_PROTOS = {"tcp": 6, "udp": 17, "icmp": 1}


@dataclass
class ManagementConfig:
    router: str
    address: ipaddress.IPv4Interface
    allow: list[ipaddress.IPv4Network]
    # (protocol number, port or None for any port / ICMP)
    ports: list[tuple[int, int | None]]


@dataclass
class BgpConfig:
    router: str
    asn: int
    neighbors: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]  # either family
    announce: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    keepalive: int = 1
    hold: int = 3
    med: int | None = None


@dataclass
class KernelConfig:
    tap: str
    tlrs: list[str] = field(default_factory=list)
    management: ManagementConfig | None = None
    bgp: list[BgpConfig] = field(default_factory=list)


def parse_kernel(r: Reader, value: Any, node: str, routers: list[Any]) -> KernelConfig:
    body = r.mapping(value, "kernel", (), ("tap", "tlrs", "management", "bgp"))
    tap = r.name(body.get("tap", f"{node}-kni"[:15]), "kernel.tap")
    if len(tap) > 15:
        raise r.fail("kernel.tap", f"{tap!r} is longer than the kernel's 15-character interface names")
    with_sr = {rc.name: rc for rc in routers if rc.sr is not None}
    tlrs = []
    for i, name in enumerate(r.sequence(body.get("tlrs") or [], "kernel.tlrs")):
        r.name(name, f"kernel.tlrs[{i}]")
        if name not in with_sr:
            raise r.fail(f"kernel.tlrs[{i}]", f"{name!r} is not a router with an SR on this node")
        tlrs.append(name)
    mgmt = None
    if body.get("management") is not None:
        path = "kernel.management"
        mb = r.mapping(body["management"], path, ("router", "address", "allow"), ("ports",))
        router = r.name(mb["router"], f"{path}.router")
        if router not in with_sr:
            raise r.fail(f"{path}.router", f"{router!r} is not a router with an SR on this node")
        address = r.interface(mb["address"], f"{path}.address")
        sr_nets = [p.ip.network for p in with_sr[router].sr.ports]
        if address.network not in sr_nets:
            raise r.fail(
                f"{path}.address", f"{address} is on no segment of {router}'s SR ({', '.join(map(str, sr_nets))})"
            )
        allow = [r.network(a, f"{path}.allow[{j}]") for j, a in enumerate(r.sequence(mb["allow"], f"{path}.allow"))]
        ports: list[tuple[int, int | None]] = []
        for j, pv in enumerate(r.sequence(mb.get("ports") or [], f"{path}.ports")):
            pb = r.mapping(pv, f"{path}.ports[{j}]", ("proto",), ("port",))
            proto = r.choice(pb["proto"], f"{path}.ports[{j}].proto", tuple(_PROTOS), "tcp, udp or icmp")
            port = r.integer(pb["port"], f"{path}.ports[{j}].port", 1, 65535) if "port" in pb else None
            if proto == "icmp" and port is not None:
                raise r.fail(f"{path}.ports[{j}].port", "ICMP has no ports")
            ports.append((_PROTOS[proto], port))
        for rc in routers:
            if rc.tlr_id == MANAGEMENT_TAG:
                raise r.fail(path, f"router {rc.name} has TLR id {MANAGEMENT_TAG}, the management namespace's tag")
        mgmt = ManagementConfig(router, address, allow, ports)
    bgp = [
        _bgp(r, bv, f"kernel.bgp[{i}]", tlrs) for i, bv in enumerate(r.sequence(body.get("bgp") or [], "kernel.bgp"))
    ]
    if len({b.router for b in bgp}) != len(bgp):
        raise r.fail("kernel.bgp", "one BGP instance per router")
    return KernelConfig(tap, tlrs, mgmt, bgp)


def _bgp(r: Reader, value: Any, path: str, tlrs: list[str]) -> BgpConfig:
    b = r.mapping(value, path, ("router", "asn", "neighbors"), ("announce", "timers", "med"))
    router = r.name(b["router"], f"{path}.router")
    if router not in tlrs:
        raise r.fail(f"{path}.router", f"{router!r} has no TLR namespace: list it in kernel.tlrs")
    asn = r.integer(b["asn"], f"{path}.asn", 1, 4294967295)
    neighbors = []
    for j, nv in enumerate(r.sequence(b["neighbors"], f"{path}.neighbors")):
        nb = r.mapping(nv, f"{path}.neighbors[{j}]", ("address", "asn"))
        neighbors.append(
            (
                r.any_address(nb["address"], f"{path}.neighbors[{j}].address"),
                r.integer(nb["asn"], f"{path}.neighbors[{j}].asn", 1, 4294967295),
            )
        )
    announce = [
        r.route_prefix(a, f"{path}.announce[{j}]")
        for j, a in enumerate(r.sequence(b.get("announce") or [], f"{path}.announce"))
    ]
    cfg = BgpConfig(router, asn, neighbors, announce)
    if b.get("med") is not None:
        cfg.med = r.integer(b["med"], f"{path}.med", 0, 4294967295)
    if b.get("timers") is not None:
        tb = r.mapping(b["timers"], f"{path}.timers", (), ("keepalive", "hold"))
        cfg.keepalive = r.integer(tb.get("keepalive", 1), f"{path}.timers.keepalive", 1, 65535)
        cfg.hold = r.integer(tb.get("hold", 3), f"{path}.timers.hold", 3, 65535)
        if cfg.hold < 3 * cfg.keepalive:
            raise r.fail(f"{path}.timers", "hold must be at least three keepalives")
    return cfg
