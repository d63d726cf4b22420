"""The logical model at run time: ports, EVI service instances, routers.

Where this sits: built once from a validated :class:`gateway.config.Config`;
the stages hold references to these objects, never to config dataclasses.

- A :class:`~gateway.port.Port` is a NIC with a transport (``io.Transport``) behind it
  (``gateway/port.py``; an EVI link is a port too).
- An :class:`Instance` is an L2 broadcast domain; ``members`` are the
  (port, VLAN) pairs its records name, the flood list.
- A :class:`Router` is one half of a logical router: the DR or the SR.  Its
  :class:`RouterPort` s sit on instances (logical switches), plus one port on
  the transit switch that joins DR and SR.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from gateway.evi import Evi
from gateway.headers import BFD_PORT, HELLO_PORT, IPPROTO_UDP, ip_str, mac_str
from gateway.headers6 import ALL_NODES, ALL_ROUTERS, multicast_mac, solicited_node
from gateway.port import Port
from gateway.services import SrServices
from gateway.services.npt import Npt
from gateway.tables.arp import ArpTable
from gateway.tables.fib import Fib, Route, mask

# (protocol, port) of packets for a router address that go to a process, by its name:
# BFD, and the HA agents' hellos to each other, to the HA agent.
PUNTS = {(IPPROTO_UDP, BFD_PORT): "ha", (IPPROTO_UDP, HELLO_PORT): "ha"}


class Instance:
    __slots__ = ("name", "members", "router_port", "router_ports", "router_macs", "netid", "links", "flood_macs",
                 "forwarding", "router_groups")  # fmt: skip

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[tuple[Port, int | None]] = []  # local (port, VLAN) records
        # Router ports on the segment: one router's (a tenant segment's DR), or several (two
        # tenant routers' SRs on one provider segment); router_port is the first.
        self.router_port: RouterPort | None = None
        self.router_ports: list[RouterPort] = []
        self.router_macs: dict[bytes, RouterPort] = {}
        # Extended to other sites (gateway/evi): its network id, the EVI links that carry it,
        # and the MACs whose unknown unicast is flooded across anyway (selective flooding).
        self.netid: int | None = None
        self.links: list[Any] = []
        self.flood_macs: frozenset[bytes] = frozenset()
        # False while another edge of this site is the instance's appointed forwarder: this
        # edge learns its site's MACs in it but forwards none of its frames.
        self.forwarding = True
        # IPv6 multicast MACs the router port listens on (all-nodes, all-routers, the
        # solicited-node groups of its addresses): neighbour discovery reaches it there.
        self.router_groups: frozenset[bytes] = frozenset()

    def add_router_port(self, rp: RouterPort) -> None:
        if self.router_port is None:
            self.router_port = rp
        self.router_ports.append(rp)
        self.router_macs[rp.mac] = rp
        self.update_groups()

    def update_groups(self) -> None:
        """The IPv6 groups the router ports listen on: all-nodes, all-routers and the
        solicited-node group of each address they answer for (also one taken over)."""
        groups: set[bytes] = set()
        for rp in self.router_ports:
            if rp.ip6 is None:
                continue
            groups |= {multicast_mac(ALL_NODES), multicast_mac(ALL_ROUTERS)}
            addrs = [rp.ip6, rp.ll6, *(ip for ip, port in rp.router.owned.items() if port is rp and ip > 0xFFFFFFFF)]
            groups |= {multicast_mac(solicited_node(a)) for a in addrs}
        self.router_groups = frozenset(groups)

    def to_dict(self) -> dict[str, Any]:
        ports = [
            {"router": rp.router.label, "ip": f"{ip_str(rp.ip)}/{rp.plen}", "mac": mac_str(rp.mac)}
            for rp in self.router_ports
        ]
        return {
            "name": self.name,
            "records": [{"port": p.name, "vlan": v} for p, v in self.members],
            "router_port": ports[0] if ports else None,
            **({"router_ports": ports} if len(ports) > 1 else {}),
        }


class RouterPort:
    """A router's address on one segment.  ``instance`` is None for the transit port.

    A dual-stack port has an IPv6 address too (``ip6``/``plen6``) and, as every IPv6
    interface, a link-local address (``ll6``, from its MAC: RFC 4291's modified EUI-64),
    which its router advertisements come from and hosts use as their default router.
    """

    __slots__ = ("router", "instance", "ip", "plen", "mac", "label", "ip6", "plen6", "ll6", "mtu")

    def __init__(self, router: Router, instance: Instance | None, ip: int, plen: int, mac: bytes) -> None:
        self.router = router
        self.instance = instance
        self.ip = ip
        self.plen = plen
        self.mac = mac
        self.label = f"{router.label}:{instance.name if instance else 'transit'}"
        self.ip6: int | None = None
        self.plen6 = 0
        self.ll6 = link_local(mac)
        # The smallest MTU of the ports its segment leaves through (None: none configured).
        mtus = [p.mtu for p, _vlan in instance.members if p.mtu] if instance is not None else []
        self.mtu: int | None = min(mtus) if mtus else None

    @property
    def network(self) -> int:
        return self.ip & mask(self.plen)

    @property
    def network6(self) -> int:
        return (self.ip6 or 0) & mask(self.plen6, 128)

    def on_link6(self, addr: int) -> bool:
        """Is ``addr`` on this port's IPv6 segment (its prefix, or link-local)?"""
        if addr >> 118 == 0x3FA:  # fe80::/10
            return True
        return self.ip6 is not None and addr & mask(self.plen6, 128) == self.network6


def link_local(mac: bytes) -> int:
    """fe80::/64 with the interface id of ``mac`` (modified EUI-64, RFC 4291 appendix A)."""
    eui = bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return (0xFE80 << 112) | int.from_bytes(eui, "big")


@dataclass(eq=False)
class Router:
    """The DR or the SR of logical router ``name``; ``kind`` is the stage that runs it."""

    name: str
    kind: str  # "dr" or "sr"
    tlr_id: int
    arp: ArpTable
    fib: Fib
    ports: list[RouterPort] = field(default_factory=list)
    transit_port: RouterPort | None = None
    local_ips: dict[int, RouterPort] = field(default_factory=dict)
    # NAT, firewall and conntrack of an SR that has them configured.
    services: SrServices | None = None
    replicates: bool = False  # an SR whose connections its HA peers replicate (ha/sync.py)
    # Addresses of a failed peer SR this router has taken over, by the port they live on.
    owned: dict[int, RouterPort] = field(default_factory=dict)
    # Our own addresses we do not claim (HA without preemption: a peer may hold them).
    yielded: set[int] = field(default_factory=set)
    # Public NAT addresses a peer SR answers for while it is up (``ha.peers[].publics``):
    # ours to answer for only once taken over (then in ``owned``).
    peer_publics: frozenset[int] = frozenset()
    # In-band management addresses on this SR's segments: address -> who may reach what.
    mgmt: dict[int, MgmtAccess] = field(default_factory=dict)
    # The tag of this SR's namespace on the kernel transport (its TLR id), None without one.
    kernel_tag: int | None = None
    # False for a router that only terminates (the EVI tunnel endpoint): it routes what it
    # builds itself, never what it receives.
    forwards: bool = True
    # The IPv6 half of the same mechanisms (dual stack): FIB, neighbour table (ND), own addresses.
    fib6: Fib | None = None
    nd: ArpTable | None = None
    local_ips6: dict[int, RouterPort] = field(default_factory=dict)
    # An SR's NPTv6 prefix translation (services/npt.py), when configured.
    npt: Npt | None = None

    def answers_arp_for(self, rport: RouterPort, ip: int) -> bool:
        """Our own address, one taken over from a peer, or (on an SR) a public NAT address."""
        if ip in self.yielded:
            return False
        if ip == rport.ip or self.owned.get(ip) is rport:
            return True
        access = self.mgmt.get(ip)
        if access is not None:
            return access.rport is rport
        return (
            self.services is not None
            and rport.instance is not None
            and ip in self.services.nat.publics
            and ip not in self.peer_publics
        )

    def answers_nd_for(self, rport: RouterPort, ip: int) -> bool:
        """IPv6: our addresses on the port (global, link-local), or one taken over from a peer."""
        if ip in self.yielded:
            return False
        return ip == rport.ip6 or ip == rport.ll6 or self.owned.get(ip) is rport

    def own_publics(self) -> frozenset[int]:
        """The public NAT addresses this SR answers for while it is up (not a peer's)."""
        if self.services is None:
            return frozenset()
        return self.services.nat.publics - self.peer_publics

    @property
    def label(self) -> str:
        return f"{self.name}-{self.kind}"

    def add_port(self, port: RouterPort) -> None:
        self.ports.append(port)
        self.local_ips[port.ip] = port
        if port.instance is not None:
            self.fib.add(Route(port.network, port.plen, None, port, origin="connected"))
        if port.ip6 is not None and self.fib6 is not None:
            self.local_ips6[port.ip6] = port
            self.local_ips6[port.ll6] = port
            self.fib6.add(Route(port.network6, port.plen6, None, port, origin="connected"))

    def connected_port6(self, ip: int) -> RouterPort | None:
        for port in self.ports:
            if port.instance is not None and port.ip6 is not None and ip & mask(port.plen6, 128) == port.network6:
                return port
        return None

    def connected_port(self, ip: int) -> RouterPort | None:
        for port in self.ports:
            if port.instance is not None and ip & mask(port.plen) == port.network:
                return port
        return None


@dataclass
class MgmtAccess:
    """In-band management at one address: the port it lives on, who may reach it, and what."""

    rport: RouterPort
    allow: list[tuple[int, int]]  # (network, prefix length)
    ports: set[tuple[int, int | None]]  # (protocol, port); port None: every port of it

    def admits(self, src: int, proto: int, port: int | None) -> bool:
        if not any(src & mask(plen) == net for net, plen in self.allow):
            return False
        return (proto, port) in self.ports or (proto, None) in self.ports


@dataclass(eq=False)
class Model:
    ports: dict[str, Port]
    instances: dict[str, Instance]
    records: dict[tuple[str, int | None], Instance]
    routers: list[Router]
    # (logical router, transit address) -> the local router port that owns it: each logical
    # router has its own transit switch, so two may use the same transit subnet
    transit: dict[tuple[str, int], RouterPort]
    # (protocol, port) -> the process that packets to a router address with it go to
    punts: dict[tuple[int, int], str] = field(default_factory=lambda: dict(PUNTS))
    # Bumped when an SR address changes owner (``ha/ownership.py``); flows through an SR depend on it.
    ownership_generation: int = 0
    # EVI between sites (``gateway/evi``), when configured.
    evi: Evi | None = None
    # (protocol, port) of packets for a router (its address, or a broadcast on its segment)
    # that go to a data-plane service process (io/service.py), from the config.
    service_ports: frozenset[tuple[int, int]] = frozenset()

    def router(self, name: Any, kind: str) -> Router:
        """The ``kind`` half (dr or sr) of router ``name`` (also given as its label, ``t1-sr``)."""
        if not isinstance(name, str):
            raise ValueError(f"a router name is a string, got {name!r}")
        base = name[: -len(kind) - 1] if name.endswith(f"-{kind}") else name
        for r in self.routers:
            if r.name == base and r.kind == kind:
                return r
        known = ", ".join(r.label for r in self.routers) or "none"
        raise ValueError(f"no {kind.upper()} of router {name!r} on this node; routers: {known}")


def add_route(
    model: Model, router: Router, prefix: ipaddress.IPv4Network | ipaddress.IPv6Network, hops: list[int]
) -> Route:
    """Add a route to ``router``'s FIB through ``hops`` (more than one: equal-cost, per flow).

    A next hop must be on a segment of the router, or (one hop only) the
    transit address of the other half of the same logical router in this
    process.  Used by the config build and by the ``route`` control command;
    raises ValueError saying which hop is wrong.
    """
    if not hops:
        raise ValueError("a route needs a next hop")
    net, plen = int(prefix.network_address), prefix.prefixlen
    v6 = prefix.version == 6
    fib = router.fib6 if v6 else router.fib
    if fib is None:
        raise ValueError(f"{router.label} has no IPv6 address on any segment: it routes no IPv6")
    ports = []
    for hop in hops:
        port = router.connected_port6(hop) if v6 else router.connected_port(hop)
        if port is None:
            peer = None if v6 else model.transit.get((router.name, hop))
            if len(hops) == 1 and peer is not None and peer.router.name == router.name and peer.router is not router:
                route = Route(net, plen, hop, None, transit=True)
                fib.add(route)
                return route
            raise ValueError(
                f"{ipaddress.IPv6Address(hop) if v6 else ipaddress.IPv4Address(hop)} is not on a connected subnet"
                f" of {router.label} (nor its transit peer); a next hop must be directly reachable"
            )
        ports.append(port)
    route = Route(net, plen, hops[0], ports[0])
    if len(hops) > 1:
        route.ecmp = list(zip(hops, ports, strict=True))
    fib.add(route)
    return route
