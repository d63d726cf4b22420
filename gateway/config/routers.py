"""Routers in a node's configuration: DR and SR halves, their ports and routes, transit, HA.

Where this sits: read by the node schema (``schema.py``) for each entry of
``routers``; the records it builds are what ``model.build`` turns into
run-time routers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from gateway.config.reader import Reader, derived_mac, show_value
from gateway.config.rules import parse_fw_rule, parse_nat, unique_names
from gateway.services.rules import FirewallConfig, NatConfig


@dataclass
class RouterPortConfig:
    instance: str
    ip: ipaddress.IPv4Interface
    mac: bytes
    ip6: ipaddress.IPv6Interface | None = None  # its IPv6 address too (dual stack)


@dataclass
class RouteConfig:
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network
    via: ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class RouterHalf:
    """The DR or the SR of one logical router; only an SR has services."""

    ports: list[RouterPortConfig]
    routes: list[RouteConfig]
    nat: NatConfig | None = None
    firewall: FirewallConfig | None = None
    # NPTv6 (RFC 6296) on an SR: (name, inside prefix, outside prefix), same lengths.
    nptv6: list[tuple[str, ipaddress.IPv6Network, ipaddress.IPv6Network]] = field(default_factory=list)


@dataclass
class TransitConfig:
    """The transit switch between a DR and its SR(s).

    Without ``instance`` it is internal (DR and SR in this process).  With
    ``instance`` it is a real segment: each half running here gets a router
    port on it, and the DR routes to ``peers`` (the SRs' transit addresses).
    """

    subnet: ipaddress.IPv4Network
    dr: ipaddress.IPv4Address
    sr: ipaddress.IPv4Address | None
    instance: str | None = None
    peers: list[ipaddress.IPv4Address] = field(default_factory=list)
    dr_mac: bytes | None = None
    sr_mac: bytes | None = None
    # The same segment's IPv6 (dual stack, a real transit segment only): the DR routes IPv6 to
    # ``peers6`` (the first: IPv6 has no equal-cost next hops here yet).
    subnet6: ipaddress.IPv6Network | None = None
    dr6: ipaddress.IPv6Address | None = None
    sr6: ipaddress.IPv6Address | None = None
    peers6: list[ipaddress.IPv6Address] = field(default_factory=list)


@dataclass
class HaPeer:
    """A peer SR: BFD runs to its transit address and its ``addresses``; on failure we take
    over those and its ``publics`` (NAT addresses it answers for while it is up: we do not)."""

    transit: ipaddress.IPv4Address
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address]  # of either family
    publics: list[ipaddress.IPv4Address] = field(default_factory=list)


SYNC_PORT = 3780  # conntrackd's default port, for the same job


@dataclass
class SyncConfig:
    """Connection state replicated to the peers (``ha/sync.py``)."""

    port: int = SYNC_PORT
    rate: int = 20000  # records a second at most
    refresh: float = 30.0  # seconds between refreshes of the entries in use (0: never)


@dataclass
class HaConfig:
    peers: list[HaPeer]
    tx_ms: int = 100
    rx_ms: int = 100
    mult: int = 3
    preempt: bool = True
    socket: str = ""
    sync: SyncConfig | None = field(default_factory=SyncConfig)
    # Routers on the SR's segments to run BFD with too (the provider's): watched, never taken over.
    neighbors: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = field(default_factory=list)  # BFD, either family


@dataclass
class RouterConfig:
    name: str
    tlr_id: int
    dr: RouterHalf | None
    sr: RouterHalf | None
    transit: TransitConfig | None
    ha: HaConfig | None = None


def parse_half(
    r: Reader,
    value: Any,
    path: str,
    instances: dict[str, Any],  # schema.InstanceConfig by name
    node: str,
    router: str,
    kind: str,
    port_owner: dict[str, list[tuple[str, int, bytes]]],
) -> RouterHalf:
    services = ("nat", "firewall", "nptv6") if kind == "sr" else ()
    body = r.mapping(value, path, ("ports",), ("routes", *services))
    ports = []
    for j, pval in enumerate(r.sequence(body["ports"], f"{path}.ports")):
        ppath = f"{path}.ports[{j}]"
        pb = r.mapping(pval, ppath, ("instance", "ip"), ("mac", "ip6"))
        inst = r.name(pb["instance"], f"{ppath}.instance")
        if inst not in instances:
            raise r.fail(
                f"{ppath}.instance", f"{inst!r} is not a configured instance; known: {', '.join(instances) or 'none'}"
            )
        owners = port_owner.setdefault(inst, [])
        label = f"{router}.{kind}"
        # A segment has one router port, except the provider's: several tenant routers' SRs.
        if owners and (kind != "sr" or any(not o.endswith(".sr") or o == label for o, _ip, _mac in owners)):
            names = ", ".join(o for o, _ip, _mac in owners)
            raise r.fail(f"{ppath}.instance", f"instance {inst!r} already has a router port ({names})")
        ip = r.interface(pb["ip"], f"{ppath}.ip")
        mac = r.mac(pb["mac"], f"{ppath}.mac") if "mac" in pb else derived_mac(node, router, kind, inst)
        for other, oip, omac in owners:
            if oip == int(ip.ip) or omac == mac:
                raise r.fail(f"{ppath}.ip", f"{other} has this address or MAC on instance {inst!r} already")
        owners.append((label, int(ip.ip), mac))
        ip6 = r.interface6(pb["ip6"], f"{ppath}.ip6") if pb.get("ip6") is not None else None
        ports.append(RouterPortConfig(inst, ip, mac, ip6))
    routes = []
    for j, rv in enumerate(r.sequence(body.get("routes", []) or [], f"{path}.routes")):
        rpath = f"{path}.routes[{j}]"
        rb = r.mapping(rv, rpath, ("prefix", "via"))
        prefix = r.route_prefix(rb["prefix"], f"{rpath}.prefix")
        via = r.any_address(rb["via"], f"{rpath}.via")
        if via.version != prefix.version:
            raise r.fail(f"{rpath}.via", f"{via} is not of the prefix's family (IPv{prefix.version})")
        routes.append(RouteConfig(prefix, via))
    nat = parse_nat(r, body["nat"], f"{path}.nat") if body.get("nat") is not None else None
    firewall = None
    if body.get("firewall") is not None:
        fb = r.mapping(body["firewall"], f"{path}.firewall", (), ("rules",))
        rules = [
            parse_fw_rule(r, rv, f"{path}.firewall.rules[{k}]", f"rule-{k + 1}")
            for k, rv in enumerate(r.sequence(fb.get("rules") or [], f"{path}.firewall.rules"))
        ]
        unique_names(r, rules, f"{path}.firewall.rules")
        firewall = FirewallConfig(rules)
    half = RouterHalf(ports, routes, nat, firewall)
    if body.get("nptv6") is not None:
        half.nptv6 = parse_nptv6(r, body["nptv6"], f"{path}.nptv6")
    return half


def parse_nptv6(r: Reader, value: Any, path: str) -> list[tuple[str, ipaddress.IPv6Network, ipaddress.IPv6Network]]:
    out: list[tuple[str, ipaddress.IPv6Network, ipaddress.IPv6Network]] = []
    for i, rv in enumerate(r.sequence(value, path)):
        rpath = f"{path}[{i}]"
        rb = r.mapping(rv, rpath, ("inside", "outside"), ("name",))
        nets = []
        for key in ("inside", "outside"):
            net = r.route_prefix(rb[key], f"{rpath}.{key}")
            if net.version != 6 or net.prefixlen % 16 or not 16 <= net.prefixlen <= 64:
                raise r.fail(f"{rpath}.{key}", f"{net} is not an IPv6 prefix of length 16, 32, 48 or 64")
            nets.append(net)
        inside, outside = nets
        if inside.prefixlen != outside.prefixlen:
            raise r.fail(f"{rpath}.outside", f"{outside} is not as long as the inside prefix {inside}")
        for name, other_in, other_out in out:
            if inside.overlaps(other_in) or outside.overlaps(other_out):
                raise r.fail(rpath, f"overlaps rule {name!r}")
        out.append((r.name(rb.get("name", f"npt-{i + 1}"), f"{rpath}.name"), inside, outside))  # type: ignore[arg-type]
    return out


def parse_transit(
    r: Reader,
    value: Any,
    path: str,
    has_dr: bool,
    has_sr: bool,
    instances: dict[str, Any],  # schema.InstanceConfig by name
    port_owner: dict[str, list[tuple[str, int, bytes]]],
    router: str,
) -> TransitConfig:
    tb = r.mapping(
        value,
        path,
        ("subnet", "dr"),
        ("sr", "instance", "peers", "dr_mac", "sr_mac", "subnet6", "dr6", "sr6", "peers6"),
    )
    subnet = r.network(tb["subnet"], f"{path}.subnet")
    dr_ip = r.address(tb["dr"], f"{path}.dr")
    sr_ip = r.address(tb["sr"], f"{path}.sr") if tb.get("sr") is not None else None
    peers = [
        r.address(p, f"{path}.peers[{i}]") for i, p in enumerate(r.sequence(tb.get("peers") or [], f"{path}.peers"))
    ]
    for key, ip in (("dr", dr_ip), ("sr", sr_ip), *((f"peers[{i}]", p) for i, p in enumerate(peers))):
        if ip is not None and ip not in subnet:
            raise r.fail(f"{path}.{key}", f"{ip} is not inside the transit subnet {subnet}")
    if has_sr and sr_ip is None:
        raise r.fail(path, "an SR on this node needs its transit address: 'sr'")
    if sr_ip is not None and dr_ip == sr_ip:
        raise r.fail(f"{path}.sr", f"{sr_ip} is also the DR's transit address")
    instance = None
    if tb.get("instance") is not None:
        instance = r.name(tb["instance"], f"{path}.instance")
        if instance not in instances:
            raise r.fail(
                f"{path}.instance", f"{instance!r} is not a configured instance; known: {', '.join(instances)}"
            )
        if port_owner.get(instance):
            names = ", ".join(o for o, _ip, _mac in port_owner[instance])
            raise r.fail(f"{path}.instance", f"instance {instance!r} already has a router port ({names})")
        if has_dr and has_sr:
            raise r.fail(
                f"{path}.instance", "DR and SR on one node share an internal transit switch: leave out 'instance'"
            )
        port_owner[instance] = [(f"{router}.transit", 0, b"")]
    if has_dr and not has_sr and not peers:
        raise r.fail(path, "a DR whose SRs run elsewhere needs their transit addresses: 'peers'")
    dr_mac = r.mac(tb["dr_mac"], f"{path}.dr_mac") if "dr_mac" in tb else None
    sr_mac = r.mac(tb["sr_mac"], f"{path}.sr_mac") if "sr_mac" in tb else None
    tc = TransitConfig(subnet, dr_ip, sr_ip, instance, peers, dr_mac, sr_mac)
    if tb.get("subnet6") is not None:
        if instance is None:
            raise r.fail(f"{path}.subnet6", "IPv6 on the transit needs a real transit segment ('instance')")
        tc.subnet6 = _network6(r, tb["subnet6"], f"{path}.subnet6")
        tc.dr6 = _address6(r, tb.get("dr6"), f"{path}.dr6")
        tc.sr6 = _address6(r, tb["sr6"], f"{path}.sr6") if tb.get("sr6") is not None else None
        tc.peers6 = [
            _address6(r, p, f"{path}.peers6[{i}]")
            for i, p in enumerate(r.sequence(tb.get("peers6") or [], f"{path}.peers6"))
        ]
        named6 = (("dr6", tc.dr6), ("sr6", tc.sr6), *((f"peers6[{i}]", p) for i, p in enumerate(tc.peers6)))
        for key, ip6 in named6:
            if ip6 is not None and ip6 not in tc.subnet6:
                raise r.fail(f"{path}.{key}", f"{ip6} is not inside the transit subnet {tc.subnet6}")
        if has_sr and tc.sr6 is None:
            raise r.fail(path, "an SR on this node with IPv6 on its transit needs its address there: 'sr6'")
    return tc


def _network6(r: Reader, value: Any, path: str) -> ipaddress.IPv6Network:
    net = r.route_prefix(value, path)
    if net.version != 6:
        raise r.fail(path, f"{net} is not an IPv6 prefix")
    return net  # type: ignore[return-value]


def _address6(r: Reader, value: Any, path: str) -> ipaddress.IPv6Address:
    ip = r.any_address(value, path)
    if ip.version != 6:
        raise r.fail(path, f"{ip} is not an IPv6 address")
    return ip  # type: ignore[return-value]


def parse_ha(r: Reader, value: Any, path: str, node: str, router: str) -> HaConfig:
    hb = r.mapping(value, path, ("peers",), ("bfd", "preempt", "socket", "sync"))
    peers = []
    for i, pv in enumerate(r.sequence(hb["peers"], f"{path}.peers")):
        pb = r.mapping(pv, f"{path}.peers[{i}]", ("transit",), ("addresses", "publics"))
        addrs: list[Any] = [
            r.any_address(a, f"{path}.peers[{i}].addresses[{j}]")  # (its IPv6 addresses too)
            for j, a in enumerate(r.sequence(pb.get("addresses") or [], f"{path}.peers[{i}].addresses"))
        ]
        publics = [
            r.address(a, f"{path}.peers[{i}].publics[{j}]")
            for j, a in enumerate(r.sequence(pb.get("publics") or [], f"{path}.peers[{i}].publics"))
        ]
        peers.append(HaPeer(r.address(pb["transit"], f"{path}.peers[{i}].transit"), addrs, publics))
    ha = HaConfig(peers)
    if "sync" in hb:
        ha.sync = parse_sync(r, hb["sync"], f"{path}.sync")
    if hb.get("bfd") is not None:
        bb = r.mapping(hb["bfd"], f"{path}.bfd", (), ("tx_ms", "rx_ms", "mult", "neighbors"))
        ha.neighbors = [
            r.any_address(a, f"{path}.bfd.neighbors[{j}]")
            for j, a in enumerate(r.sequence(bb.get("neighbors") or [], f"{path}.bfd.neighbors"))
        ]
        ha.tx_ms = r.integer(bb.get("tx_ms", 100), f"{path}.bfd.tx_ms", 10, 60000)
        ha.rx_ms = r.integer(bb.get("rx_ms", 100), f"{path}.bfd.rx_ms", 10, 60000)
        ha.mult = r.integer(bb.get("mult", 3), f"{path}.bfd.mult", 1, 255)
    if "preempt" in hb:
        if not isinstance(hb["preempt"], bool):
            raise r.fail(f"{path}.preempt", f"{show_value(hb['preempt'])} is not true or false")
        ha.preempt = hb["preempt"]
    ha.socket = r.path(hb.get("socket", f"/run/edgelab/{node}-{router}-ha.sock"), f"{path}.socket")
    return ha


def parse_sync(r: Reader, value: Any, path: str) -> SyncConfig | None:
    """``sync: false`` (no replication), ``true`` (the defaults) or its settings."""
    if isinstance(value, bool):
        return SyncConfig() if value else None
    sb = r.mapping(value, path, (), ("port", "rate", "refresh_s"))
    sync = SyncConfig()
    sync.port = r.integer(sb.get("port", SYNC_PORT), f"{path}.port", 1, 65535)
    sync.rate = r.integer(sb.get("rate", sync.rate), f"{path}.rate", 100, 10_000_000)
    if sync.port in (3784, 3799):
        raise r.fail(f"{path}.port", f"{sync.port} is the HA agent's (BFD, hellos)")
    sync.refresh = r.number(sb.get("refresh_s", sync.refresh), f"{path}.refresh_s", 0, 86400)
    return sync
