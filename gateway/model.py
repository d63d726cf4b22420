"""The logical model at run time: ports, EVI service instances, routers.

Where this sits: built once from a validated :class:`gateway.config.Config`;
the stages hold references to these objects, never to config dataclasses.

- A :class:`Port` is a NIC with a transport (``io.Transport``) behind it.
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

from gateway.config import Config, ConfigError, RouterHalf, derived_mac
from gateway.epoch import Epoch
from gateway.evi import Evi
from gateway.headers import BFD_PORT, HELLO_PORT, IPPROTO_UDP, ip_str, mac_str
from gateway.io import Transport
from gateway.services import SrServices
from gateway.services.conntrack import SessionBudget
from gateway.services.rules import FirewallConfig, NatConfig
from gateway.tables.arp import ArpTable
from gateway.tables.fib import Fib, Route, mask

# (protocol, port) of packets for a router address that go to a process, by its name:
# BFD, and the HA agents' hellos to each other, to the HA agent.
PUNTS = {(IPPROTO_UDP, BFD_PORT): "ha", (IPPROTO_UDP, HELLO_PORT): "ha"}


class Port:
    __slots__ = ("name", "ifname", "role", "io", "rx", "tx", "tx_errors", "errors", "last_error", "mirror")

    def __init__(self, name: str, ifname: str, role: str) -> None:
        self.name = name
        self.ifname = ifname
        self.role = role
        self.io: Transport | None = None
        self.rx = 0
        self.tx = 0
        self.tx_errors = 0
        self.errors = 0  # socket errors (interface down or gone)
        self.last_error = 0
        # monitor.Monitor while a mirror session watches this port (receive side; the transmit
        # side is a wrapper around ``io``, so an unwatched port's send costs nothing extra).
        self.mirror: Any = None

    def send(self, frame: bytes | bytearray) -> None:
        try:
            self.io.send(frame)  # type: ignore[union-attr]
            self.tx += 1
        except OSError:
            # A full socket buffer or a link going down costs this frame, not the daemon.
            self.tx_errors += 1

    def counters(self) -> dict[str, int]:
        """The port's counters and its transport's (``io.Transport.counters``)."""
        io = self.io.counters() if self.io is not None else {"rx_dropped": 0, "tx_dropped": 0, "rx_resyncs": 0}
        return {"rx": self.rx, "tx": self.tx, "tx_errors": self.tx_errors, "errors": self.errors, **io}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ifname": self.ifname,
            "role": self.role,
            **self.counters(),
        }


class Instance:
    __slots__ = ("name", "members", "router_port", "router_ports", "router_macs", "netid", "links", "flood_macs",
                 "forwarding")  # fmt: skip

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

    def add_router_port(self, rp: RouterPort) -> None:
        if self.router_port is None:
            self.router_port = rp
        self.router_ports.append(rp)
        self.router_macs[rp.mac] = rp

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
    """A router's address on one segment.  ``instance`` is None for the transit port."""

    __slots__ = ("router", "instance", "ip", "plen", "mac", "label")

    def __init__(self, router: Router, instance: Instance | None, ip: int, plen: int, mac: bytes) -> None:
        self.router = router
        self.instance = instance
        self.ip = ip
        self.plen = plen
        self.mac = mac
        self.label = f"{router.label}:{instance.name if instance else 'transit'}"

    @property
    def network(self) -> int:
        return self.ip & mask(self.plen)


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


def add_route(model: Model, router: Router, prefix: ipaddress.IPv4Network, hops: list[int]) -> Route:
    """Add a route to ``router``'s FIB through ``hops`` (more than one: equal-cost, per flow).

    A next hop must be on a segment of the router, or (one hop only) the
    transit address of the other half of the same logical router in this
    process.  Used by the config build and by the ``route`` control command;
    raises ValueError saying which hop is wrong.
    """
    if not hops:
        raise ValueError("a route needs a next hop")
    net, plen = int(prefix.network_address), prefix.prefixlen
    ports = []
    for hop in hops:
        port = router.connected_port(hop)
        if port is None:
            peer = model.transit.get((router.name, hop))
            if len(hops) == 1 and peer is not None and peer.router.name == router.name and peer.router is not router:
                route = Route(net, plen, hop, None, transit=True)
                router.fib.add(route)
                return route
            raise ValueError(
                f"{ipaddress.IPv4Address(hop)} is not on a connected subnet of {router.label}"
                " (nor its transit peer); a next hop must be directly reachable"
            )
        ports.append(port)
    route = Route(net, plen, hops[0], ports[0])
    if len(hops) > 1:
        route.ecmp = list(zip(hops, ports, strict=True))
    router.fib.add(route)
    return route


def build(cfg: Config, epoch: Epoch) -> Model:
    """Turn a validated config into run-time objects (no I/O is opened here)."""
    ports = {name: Port(name, p.ifname, p.role) for name, p in cfg.ports.items()}
    instances: dict[str, Instance] = {}
    records: dict[tuple[str, int | None], Instance] = {}
    for name, ic in cfg.instances.items():
        inst = instances[name] = Instance(name)
        for rec in ic.records:
            inst.members.append((ports[rec.port], rec.vlan))
            records[(rec.port, rec.vlan)] = inst
    routers: list[Router] = []
    transit: dict[tuple[str, int], RouterPort] = {}
    model = Model(ports, instances, records, routers, transit)
    t = cfg.tables
    budget = SessionBudget(t.sessions_max)  # shared by every SR: the node's bound on connections
    # TCP server ports whose connections an application-level gateway reads (the FTP ALG's 21).
    alg_ports = {port: s.name for s in cfg.services for proto, port in s.punts if proto == 6}
    for i, rc in enumerate(cfg.routers):
        path = f"routers[{i}]"
        tr = rc.transit
        dr = sr = None
        if rc.dr is not None:
            dr = Router(
                rc.name, "dr", rc.tlr_id, ArpTable(t.arp_timeout, t.arp_queue, t.arp_retries, epoch), Fib(epoch)
            )
            _add_ports(dr, rc.dr, instances)
            routers.append(dr)
        if rc.sr is not None:
            sr = Router(
                rc.name, "sr", rc.tlr_id, ArpTable(t.arp_timeout, t.arp_queue, t.arp_retries, epoch), Fib(epoch)
            )
            _add_ports(sr, rc.sr, instances)
            if rc.sr.nat is not None or rc.sr.firewall is not None:
                sr.services = SrServices(
                    rc.sr.nat or NatConfig(), rc.sr.firewall or FirewallConfig(), epoch, budget, alg_ports
                )
            if rc.ha is not None:
                sr.peer_publics = frozenset(int(a) for p in rc.ha.peers for a in p.publics)
                if rc.ha.sync is not None:
                    model.punts[(IPPROTO_UDP, rc.ha.sync.port)] = "sync"  # state replication (ha/sync.py)
            routers.append(sr)
        if tr is not None and tr.instance is not None:
            # A real transit segment: each half here gets a router port on it, and
            # routes over it like over any other segment.
            seg = instances[tr.instance]
            plen = tr.subnet.prefixlen
            if dr is not None:
                mac = tr.dr_mac or derived_mac(cfg.node, rc.name, "dr", "transit")
                dr.transit_port = RouterPort(dr, seg, int(tr.dr), plen, mac)
                seg.add_router_port(dr.transit_port)
                dr.add_port(dr.transit_port)
            if sr is not None and tr.sr is not None:
                mac = tr.sr_mac or derived_mac(cfg.node, rc.name, "sr", "transit")
                sr.transit_port = RouterPort(sr, seg, int(tr.sr), plen, mac)
                seg.add_router_port(sr.transit_port)
                sr.add_port(sr.transit_port)
            if dr is not None and rc.dr is not None:
                _add_routes(model, dr, rc.dr, f"{path}.dr", cfg)
                if not any(route.plen == 0 for route in dr.fib.routes()):
                    hops = [int(p) for p in tr.peers] if tr.peers else [int(tr.sr)]  # type: ignore[arg-type]
                    default = Route(0, 0, hops[0], dr.transit_port, origin="transit")
                    if len(hops) > 1:  # active/active SRs: equal-cost, per flow
                        default.ecmp = [(h, dr.transit_port) for h in hops]  # type: ignore[misc]
                    dr.fib.add(default)
            if sr is not None and rc.sr is not None:
                _add_routes(model, sr, rc.sr, f"{path}.sr", cfg)
            continue
        if (
            dr is not None
            and sr is not None
            and tr is not None
            and tr.sr is not None
            and rc.dr is not None
            and rc.sr is not None
        ):
            # DR and SR in this process: the transit switch is the transit stage.
            tplen = tr.subnet.prefixlen
            dr.transit_port = RouterPort(dr, None, int(tr.dr), tplen, b"\x00" * 6)
            sr.transit_port = RouterPort(sr, None, int(tr.sr), tplen, b"\x00" * 6)
            dr.local_ips[int(tr.dr)] = dr.transit_port
            sr.local_ips[int(tr.sr)] = sr.transit_port
            transit[(rc.name, int(tr.dr))] = dr.transit_port
            transit[(rc.name, int(tr.sr))] = sr.transit_port
            _add_routes(model, dr, rc.dr, f"{path}.dr", cfg)
            _add_routes(model, sr, rc.sr, f"{path}.sr", cfg)
            # The SR reaches every tenant subnet of its DR through the transit switch,
            # and the DR sends everything else to the SR.
            for route in dr.fib.routes():
                if not route.transit and route.plen != 0:
                    sr.fib.add(Route(route.prefix, route.plen, int(tr.dr), None, transit=True, origin="transit"))
            if not any(route.plen == 0 for route in dr.fib.routes()):
                dr.fib.add(Route(0, 0, int(tr.sr), None, transit=True, origin="transit"))
        elif dr is not None and rc.dr is not None:
            _add_routes(model, dr, rc.dr, f"{path}.dr", cfg)
    if cfg.kernel is not None:
        _add_kernel(model, cfg)
    if cfg.evi is not None:
        _add_evi(model, cfg, epoch)
    model.service_ports = frozenset(p for s in cfg.services for p in s.punts)
    return model


EVI_CORE = "evi-core"  # the core segment's instance (the core port, untagged)


def _add_evi(model: Model, cfg: Config, epoch: Epoch) -> None:
    """The EVI tunnel endpoint: a router on the core port that only terminates, its links."""
    ec = cfg.evi
    assert ec is not None
    t = cfg.tables
    core = model.instances[EVI_CORE] = Instance(EVI_CORE)
    port = model.ports[ec.port]
    core.members.append((port, None))
    model.records[(ec.port, None)] = core
    router = Router("evi", "sr", 0, ArpTable(t.arp_timeout, t.arp_queue, t.arp_retries, epoch), Fib(epoch))
    router.forwards = False
    rport = RouterPort(router, core, int(ec.address.ip), ec.address.network.prefixlen, derived_mac(cfg.node, "evi"))
    core.add_router_port(rport)
    router.add_port(rport)
    if ec.gateway is not None:
        router.fib.add(Route(0, 0, int(ec.gateway), rport, origin="static"))
    model.routers.append(router)
    evi = model.evi = Evi(ec.site, router, rport, ec.mtu, epoch)
    evi.arp_suppression = ec.arp_suppression
    evi.arp_timeout = ec.arp_timeout
    for name, netid in ec.instances.items():
        evi.extend(model.instances[name], netid, ec.flood.get(name, []))
        # With discovery another edge of this site may appear: forward only once the control
        # process has appointed this edge (evi-af), so two edges never both forward at start.
        model.instances[name].forwarding = ec.discovery is None
    for lc in ec.links:
        evi.add_link(lc.site, int(lc.address), lc.mtu, None, "static")


def _add_kernel(model: Model, cfg: Config) -> None:
    """Namespaces on the kernel transport: TLR namespaces, in-band management."""
    kc = cfg.kernel
    assert kc is not None
    for name in kc.tlrs:
        sr = model.router(name, "sr")
        sr.kernel_tag = sr.tlr_id
    if kc.management is not None:
        mc = kc.management
        sr = model.router(mc.router, "sr")
        ip = int(mc.address.ip)
        rport = sr.connected_port(ip)
        if rport is None:
            raise ConfigError(f"{cfg.source}: kernel.management.address: {mc.address} is on no segment of {sr.label}")
        allow = [(int(n.network_address), n.prefixlen) for n in mc.allow]
        sr.mgmt[ip] = MgmtAccess(rport, allow, set(mc.ports))
        sr.local_ips[ip] = rport


def _add_ports(router: Router, half: RouterHalf, instances: dict[str, Instance]) -> None:
    for pc in half.ports:
        inst = instances[pc.instance]
        rp = RouterPort(router, inst, int(pc.ip.ip), pc.ip.network.prefixlen, pc.mac)
        inst.add_router_port(rp)
        router.add_port(rp)


def _add_routes(model: Model, router: Router, half: RouterHalf, path: str, cfg: Config) -> None:
    for j, rc in enumerate(half.routes):
        try:
            add_route(model, router, rc.prefix, [int(rc.via)])
        except ValueError as exc:
            raise ConfigError(f"{cfg.source}: {path}.routes[{j}].via: {exc}") from None
