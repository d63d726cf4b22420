"""Building the run-time model from a validated config: routers, their ports and routes,
the transit between DR and SR, the kernel transport's namespaces, EVI.

Where this sits: called once by the datapath at start and by a config reload
(``control/reload.py``); it opens no I/O.  What it builds is ``model.py``'s.
"""

from __future__ import annotations

from gateway.config import Config, ConfigError, RouterHalf, derived_mac
from gateway.epoch import Epoch
from gateway.evi import Evi
from gateway.headers import IPPROTO_UDP
from gateway.model import Instance, MgmtAccess, Model, Router, RouterPort, add_route
from gateway.port import Port
from gateway.services import SrServices
from gateway.services.conntrack import SessionBudget
from gateway.services.npt import Npt, NptRule
from gateway.services.rules import FirewallConfig, NatConfig
from gateway.tables.arp import ArpTable
from gateway.tables.fib import Fib, Route


def build(cfg: Config, epoch: Epoch) -> Model:
    """Turn a validated config into run-time objects (no I/O is opened here)."""
    ports = {name: Port(name, p.ifname, p.role, p.mtu) for name, p in cfg.ports.items()}
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
            dr = _router(rc.name, "dr", rc.tlr_id, rc.dr, cfg, epoch)
            _add_ports(dr, rc.dr, instances)
            routers.append(dr)
        if rc.sr is not None:
            sr = _router(rc.name, "sr", rc.tlr_id, rc.sr, cfg, epoch)
            _add_ports(sr, rc.sr, instances)
            if rc.sr.nptv6:
                sr.npt = Npt([NptRule(n, int(i.network_address), int(o.network_address), i.prefixlen)
                              for n, i, o in rc.sr.nptv6])  # fmt: skip
            if rc.sr.nat is not None or rc.sr.firewall is not None:
                sr.services = SrServices(
                    rc.sr.nat or NatConfig(), rc.sr.firewall or FirewallConfig(), epoch, budget, alg_ports
                )
            if rc.ha is not None:
                sr.peer_publics = frozenset(int(a) for p in rc.ha.peers for a in p.publics)
                if rc.ha.sync is not None:
                    model.punts[(IPPROTO_UDP, rc.ha.sync.port)] = "sync"  # state replication (ha/sync.py)
                    sr.replicates = True
            routers.append(sr)
        if tr is not None and tr.instance is not None:
            # A real transit segment: each half here gets a router port on it, and
            # routes over it like over any other segment.
            seg = instances[tr.instance]
            for half, ip, ip6, mac in ((dr, tr.dr, tr.dr6, tr.dr_mac), (sr, tr.sr, tr.sr6, tr.sr_mac)):
                if half is None or ip is None:
                    continue
                mac = mac or derived_mac(cfg.node, rc.name, half.kind, "transit")
                port = half.transit_port = RouterPort(half, seg, int(ip), tr.subnet.prefixlen, mac)
                if ip6 is not None and tr.subnet6 is not None and half.fib6 is not None:
                    port.ip6, port.plen6 = int(ip6), tr.subnet6.prefixlen
                seg.add_router_port(port)
                half.add_port(port)
            if dr is not None and rc.dr is not None:
                _add_routes(model, dr, rc.dr, f"{path}.dr", cfg)
                if not any(route.plen == 0 for route in dr.fib.routes()):
                    hops = [int(p) for p in tr.peers] if tr.peers else [int(tr.sr)]  # type: ignore[arg-type]
                    default = Route(0, 0, hops[0], dr.transit_port, origin="transit")
                    if len(hops) > 1:  # active/active SRs: equal-cost, per flow
                        default.ecmp = [(h, dr.transit_port) for h in hops]  # type: ignore[misc]
                    dr.fib.add(default)
                hops6 = tr.peers6 or ([tr.sr6] if tr.sr6 is not None else [])
                if dr.fib6 is not None and hops6 and dr.fib6.get(0, 0) is None:
                    default = Route(0, 0, int(hops6[0]), dr.transit_port, origin="transit")
                    if len(hops6) > 1:
                        default.ecmp = [(int(h), dr.transit_port) for h in hops6]  # type: ignore[misc]
                    dr.fib6.add(default)
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
            # (IPv6 crosses the same internal switch: its routes name the peer by its transit
            # address too, which is only the key of the local peer here, never on a wire.)
            for dfib, sfib in ((dr.fib, sr.fib), (dr.fib6, sr.fib6)):
                if dfib is None:
                    continue
                for route in dfib.routes():
                    if not route.transit and route.plen != 0 and sfib is not None:
                        sfib.add(Route(route.prefix, route.plen, int(tr.dr), None, transit=True, origin="transit"))
                if sfib is not None and not any(route.plen == 0 for route in dfib.routes()):
                    dfib.add(Route(0, 0, int(tr.sr), None, transit=True, origin="transit"))
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
    core = model.instances[EVI_CORE] = Instance(EVI_CORE)
    port = model.ports[ec.port]
    core.members.append((port, None))
    model.records[(ec.port, None)] = core
    router = _router("evi", "sr", 0, None, cfg, epoch)
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


def _router(name: str, kind: str, tlr_id: int, half: RouterHalf | None, cfg: Config, epoch: Epoch) -> Router:
    """A DR or SR; dual stack (an IPv6 FIB and neighbour table) when a port of it has IPv6."""
    t = cfg.tables
    router = Router(name, kind, tlr_id, ArpTable(t.arp_timeout, t.arp_queue, t.arp_retries, epoch), Fib(epoch))
    if half is not None and any(pc.ip6 is not None for pc in half.ports):
        router.fib6 = Fib(epoch, bits=128)
        router.nd = ArpTable(t.arp_timeout, t.arp_queue, t.arp_retries, epoch, bits=128)
    return router


def _add_ports(router: Router, half: RouterHalf, instances: dict[str, Instance]) -> None:
    for pc in half.ports:
        inst = instances[pc.instance]
        rp = RouterPort(router, inst, int(pc.ip.ip), pc.ip.network.prefixlen, pc.mac)
        if pc.ip6 is not None:
            rp.ip6, rp.plen6 = int(pc.ip6.ip), pc.ip6.network.prefixlen
        inst.add_router_port(rp)
        router.add_port(rp)


def _add_routes(model: Model, router: Router, half: RouterHalf, path: str, cfg: Config) -> None:
    for j, rc in enumerate(half.routes):
        try:
            add_route(model, router, rc.prefix, [int(rc.via)])
        except ValueError as exc:
            raise ConfigError(f"{cfg.source}: {path}.routes[{j}].via: {exc}") from None
