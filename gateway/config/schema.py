"""The node schema: one gateway node's YAML in, validated dataclasses out.

Where this sits: read once at start (``python -m gateway --config FILE``); the
datapath builds its tables from the result.  Every error names the file, the
field path and the offending value, and says what was expected, in one
sentence: :class:`ConfigError` is the only exception that leaves this module.

Schema (see ``topologies/edge_basic.py`` for a full example)::

    node: edge1
    control_socket: /run/edgelab/edge1.sock      # optional
    ports:       {NAME: {ifname: IF, role: tenant|uplink|transit|management}}
    instances:   {NAME: {records: [{port: NAME, vlan: 1-4094 | null}]}}
    routers:
      - name: t1
        tlr_id: 1
        dr: {ports: [{instance: NAME, ip: A.B.C.D/N, mac: MAC}], routes: [...]}
        sr:
          ports: [...]
          routes: [{prefix: A.B.C.D/N, via: A.B.C.D}]
          nat:
            snat: [{source: PREFIX, pool: PREFIX | [ADDR, ...], ports: LO-HI}]
            dnat: [{public: ADDR, proto: tcp|udp, port: N, to: ADDR, to_port: N}]
            one_to_one: [{public: ADDR, private: ADDR}]
            max_sessions: 65536
            timeouts: {tcp_established: 7440, tcp_transitory: 240, udp: 300, icmp: 60}
          firewall:
            rules: [{name, action: allow|drop|reject, direction: in|out|any,
                     proto: tcp|udp|icmp|any, src: PREFIX, dst: PREFIX, dport: N | LO-HI}]
        transit: {subnet: 169.254.0.0/28, dr: 169.254.0.1, sr: 169.254.0.2}
    tables: {mac_aging: 300, arp_timeout: 300, arp_queue: 16, arp_retries: 3}
    cache: {enabled: true, capacity: 65536, idle_timeout: 10}
    io: block                # block: PACKET_MMAP rings (default); socket: two system calls per frame
    kernel: {tap: ..., tlrs: [...], management: {...}}   # the user-kernel transport: kernel.py
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.config.kernel import KernelConfig, parse_kernel
from gateway.config.reader import ConfigError, Reader, derived_mac, show_value
from gateway.config.rules import parse_fw_rule, parse_nat, unique_names
from gateway.services.rules import FirewallConfig, NatConfig

PORT_ROLES = ("tenant", "uplink", "transit", "management")


@dataclass
class PortConfig:
    name: str
    ifname: str
    role: str


@dataclass
class Record:
    port: str
    vlan: int | None


@dataclass
class InstanceConfig:
    name: str
    records: list[Record]


@dataclass
class RouterPortConfig:
    instance: str
    ip: ipaddress.IPv4Interface
    mac: bytes


@dataclass
class RouteConfig:
    prefix: ipaddress.IPv4Network
    via: ipaddress.IPv4Address


@dataclass
class RouterHalf:
    """The DR or the SR of one logical router; only an SR has services."""

    ports: list[RouterPortConfig]
    routes: list[RouteConfig]
    nat: NatConfig | None = None
    firewall: FirewallConfig | None = None


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


@dataclass
class HaPeer:
    """A peer SR: BFD runs to its transit address; on failure we take over its addresses."""

    transit: ipaddress.IPv4Address
    addresses: list[ipaddress.IPv4Address]


@dataclass
class HaConfig:
    peers: list[HaPeer]
    tx_ms: int = 100
    rx_ms: int = 100
    mult: int = 3
    preempt: bool = True
    socket: str = ""


@dataclass
class RouterConfig:
    name: str
    tlr_id: int
    dr: RouterHalf | None
    sr: RouterHalf | None
    transit: TransitConfig | None
    ha: HaConfig | None = None


@dataclass
class TablesConfig:
    mac_aging: float = 300.0
    arp_timeout: float = 300.0
    arp_queue: int = 16
    arp_retries: int = 3


@dataclass
class CacheConfig:
    enabled: bool = True
    capacity: int = 65536
    idle_timeout: float = 10.0


@dataclass
class Config:
    node: str
    control_socket: str
    ports: dict[str, PortConfig]
    instances: dict[str, InstanceConfig]
    routers: list[RouterConfig]
    tables: TablesConfig = field(default_factory=TablesConfig)
    source: str = "<config>"
    cache: CacheConfig = field(default_factory=CacheConfig)
    io: str = "block"
    kernel: KernelConfig | None = None


def load(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<config>") -> Config:
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: it nests too deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    try:
        return build(raw, source)
    except RecursionError:
        raise ConfigError(f"{source}: the config nests too deep") from None


def build(raw: Any, source: str = "<config>") -> Config:
    r = Reader(source)
    top = r.mapping(
        raw, "", ("node", "ports", "instances"), ("control_socket", "routers", "tables", "cache", "io", "kernel")
    )
    node = r.name(top["node"], "node")
    sock = r.path(top.get("control_socket", f"/run/edgelab/{node}.sock"), "control_socket")

    ports: dict[str, PortConfig] = {}
    ifnames: dict[str, str] = {}
    for pname, pval in r.named(top["ports"], "ports").items():
        path = f"ports.{pname}"
        r.name(pname, path)
        body = r.mapping(pval, path, ("ifname",), ("role",))
        ifname = r.name(body["ifname"], f"{path}.ifname")
        if len(ifname) > 15:
            raise r.fail(f"{path}.ifname", f"{ifname!r} is longer than the kernel's 15-character interface names")
        if ifname in ifnames:
            raise r.fail(f"{path}.ifname", f"{ifname!r} is already used by port '{ifnames[ifname]}'")
        ifnames[ifname] = pname
        role = r.choice(
            body.get("role", "tenant"),
            f"{path}.role",
            PORT_ROLES,
            f"a port role; expected one of: {', '.join(PORT_ROLES)}",
        )
        ports[pname] = PortConfig(pname, ifname, role)
    if not ports:
        raise r.fail("ports", "at least one port is required")

    instances: dict[str, InstanceConfig] = {}
    owners: dict[tuple[str, int | None], str] = {}
    for iname, ival in r.named(top["instances"] or {}, "instances").items():
        path = f"instances.{iname}"
        r.name(iname, path)
        body = r.mapping(ival, path, ("records",))
        records = []
        for i, rec in enumerate(r.sequence(body["records"], f"{path}.records")):
            rpath = f"{path}.records[{i}]"
            rb = r.mapping(rec, rpath, ("port",), ("vlan",))
            port = r.name(rb["port"], f"{rpath}.port")
            if port not in ports:
                raise r.fail(f"{rpath}.port", f"{port!r} is not a configured port; known ports: {', '.join(ports)}")
            vlan = rb.get("vlan")
            if vlan is not None:
                vlan = r.integer(vlan, f"{rpath}.vlan", 1, 4094)
            key = (port, vlan)
            if key in owners:
                tag = "untagged" if vlan is None else f"VLAN {vlan}"
                raise r.fail(
                    rpath,
                    f"port {port!r} {tag} is already mapped to instance '{owners[key]}'; a (port, VLAN) names one instance",
                )
            owners[key] = iname
            records.append(Record(port, vlan))
        instances[iname] = InstanceConfig(iname, records)

    routers: list[RouterConfig] = []
    seen_names: set[str] = set()
    seen_ids: set[int] = set()
    port_owner: dict[str, str] = {}
    for i, rval in enumerate(r.sequence(top.get("routers", []) or [], "routers")):
        path = f"routers[{i}]"
        body = r.mapping(rval, path, ("name", "tlr_id"), ("dr", "sr", "transit", "ha"))
        name = r.name(body["name"], f"{path}.name")
        if name in seen_names:
            raise r.fail(f"{path}.name", f"router {name!r} is defined twice")
        seen_names.add(name)
        tlr_id = r.integer(body["tlr_id"], f"{path}.tlr_id", 1, 4094)
        if tlr_id in seen_ids:
            raise r.fail(f"{path}.tlr_id", f"TLR id {tlr_id} is already used by another router")
        seen_ids.add(tlr_id)
        if body.get("dr") is None and body.get("sr") is None:
            raise r.fail(path, "a router needs a 'dr', an 'sr', or both (the halves that run on this node)")
        dr = (
            _half(r, body["dr"], f"{path}.dr", instances, node, name, "dr", port_owner)
            if body.get("dr") is not None
            else None
        )
        sr = (
            _half(r, body["sr"], f"{path}.sr", instances, node, name, "sr", port_owner)
            if body.get("sr") is not None
            else None
        )
        transit = None
        if body.get("transit") is not None:
            transit = _transit(
                r, body["transit"], f"{path}.transit", dr is not None, sr is not None, instances, port_owner, name
            )
            if (dr is None or sr is None) and transit.instance is None:
                raise r.fail(
                    f"{path}.transit",
                    "with one half on this node the transit switch is a segment: give it an 'instance'",
                )
        elif sr is not None:
            raise r.fail(path, "a router with an 'sr' needs a 'transit' (subnet, dr, sr addresses)")
        ha = None
        if body.get("ha") is not None:
            if sr is None:
                raise r.fail(f"{path}.ha", "high availability is for a node that runs an SR")
            ha = _ha(r, body["ha"], f"{path}.ha", node, name)
        routers.append(RouterConfig(name, tlr_id, dr, sr, transit, ha))

    tables = TablesConfig()
    if top.get("tables") is not None:
        tb = r.mapping(top["tables"], "tables", (), ("mac_aging", "arp_timeout", "arp_queue", "arp_retries"))
        if "mac_aging" in tb:
            tables.mac_aging = r.number(tb["mac_aging"], "tables.mac_aging", 1)
        if "arp_timeout" in tb:
            tables.arp_timeout = r.number(tb["arp_timeout"], "tables.arp_timeout", 1)
        if "arp_queue" in tb:
            tables.arp_queue = r.integer(tb["arp_queue"], "tables.arp_queue", 1, 4096)
        if "arp_retries" in tb:
            tables.arp_retries = r.integer(tb["arp_retries"], "tables.arp_retries", 1, 10)
    cache = CacheConfig()
    if top.get("cache") is not None:
        cb = r.mapping(top["cache"], "cache", (), ("enabled", "capacity", "idle_timeout"))
        if "enabled" in cb:
            if not isinstance(cb["enabled"], bool):
                raise r.fail("cache.enabled", f"{show_value(cb['enabled'])} is not true or false")
            cache.enabled = cb["enabled"]
        if "capacity" in cb:
            cache.capacity = r.integer(cb["capacity"], "cache.capacity", 1, 10_000_000)
        if "idle_timeout" in cb:
            cache.idle_timeout = r.number(cb["idle_timeout"], "cache.idle_timeout", 0.1)
    io = r.choice(
        top.get("io", "block"),
        "io",
        ("block", "socket"),
        "block (PACKET_MMAP rings, the default) or socket (one system call per frame);"
        " the experimental 'ring' mode was removed",
    )
    kernel = parse_kernel(r, top["kernel"], node, routers) if top.get("kernel") is not None else None
    return Config(node, sock, ports, instances, routers, tables, source, cache, io, kernel)


def _half(
    r: Reader,
    value: Any,
    path: str,
    instances: dict[str, InstanceConfig],
    node: str,
    router: str,
    kind: str,
    port_owner: dict[str, str],
) -> RouterHalf:
    services = ("nat", "firewall") if kind == "sr" else ()
    body = r.mapping(value, path, ("ports",), ("routes", *services))
    ports = []
    for j, pval in enumerate(r.sequence(body["ports"], f"{path}.ports")):
        ppath = f"{path}.ports[{j}]"
        pb = r.mapping(pval, ppath, ("instance", "ip"), ("mac",))
        inst = r.name(pb["instance"], f"{ppath}.instance")
        if inst not in instances:
            raise r.fail(
                f"{ppath}.instance", f"{inst!r} is not a configured instance; known: {', '.join(instances) or 'none'}"
            )
        if inst in port_owner:
            raise r.fail(f"{ppath}.instance", f"instance {inst!r} already has a router port ({port_owner[inst]})")
        port_owner[inst] = f"{router}.{kind}"
        ip = r.interface(pb["ip"], f"{ppath}.ip")
        mac = r.mac(pb["mac"], f"{ppath}.mac") if "mac" in pb else derived_mac(node, router, kind, inst)
        ports.append(RouterPortConfig(inst, ip, mac))
    routes = []
    for j, rv in enumerate(r.sequence(body.get("routes", []) or [], f"{path}.routes")):
        rpath = f"{path}.routes[{j}]"
        rb = r.mapping(rv, rpath, ("prefix", "via"))
        routes.append(RouteConfig(r.network(rb["prefix"], f"{rpath}.prefix"), r.address(rb["via"], f"{rpath}.via")))
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
    return RouterHalf(ports, routes, nat, firewall)


def _transit(
    r: Reader,
    value: Any,
    path: str,
    has_dr: bool,
    has_sr: bool,
    instances: dict[str, InstanceConfig],
    port_owner: dict[str, str],
    router: str,
) -> TransitConfig:
    tb = r.mapping(value, path, ("subnet", "dr"), ("sr", "instance", "peers", "dr_mac", "sr_mac"))
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
        if instance in port_owner:
            raise r.fail(
                f"{path}.instance", f"instance {instance!r} already has a router port ({port_owner[instance]})"
            )
        if has_dr and has_sr:
            raise r.fail(
                f"{path}.instance", "DR and SR on one node share an internal transit switch: leave out 'instance'"
            )
        port_owner[instance] = f"{router}.transit"
    if has_dr and not has_sr and not peers:
        raise r.fail(path, "a DR whose SRs run elsewhere needs their transit addresses: 'peers'")
    dr_mac = r.mac(tb["dr_mac"], f"{path}.dr_mac") if "dr_mac" in tb else None
    sr_mac = r.mac(tb["sr_mac"], f"{path}.sr_mac") if "sr_mac" in tb else None
    return TransitConfig(subnet, dr_ip, sr_ip, instance, peers, dr_mac, sr_mac)


def _ha(r: Reader, value: Any, path: str, node: str, router: str) -> HaConfig:
    hb = r.mapping(value, path, ("peers",), ("bfd", "preempt", "socket"))
    peers = []
    for i, pv in enumerate(r.sequence(hb["peers"], f"{path}.peers")):
        pb = r.mapping(pv, f"{path}.peers[{i}]", ("transit",), ("addresses",))
        addrs = [
            r.address(a, f"{path}.peers[{i}].addresses[{j}]")
            for j, a in enumerate(r.sequence(pb.get("addresses") or [], f"{path}.peers[{i}].addresses"))
        ]
        peers.append(HaPeer(r.address(pb["transit"], f"{path}.peers[{i}].transit"), addrs))
    ha = HaConfig(peers)
    if hb.get("bfd") is not None:
        bb = r.mapping(hb["bfd"], f"{path}.bfd", (), ("tx_ms", "rx_ms", "mult"))
        ha.tx_ms = r.integer(bb.get("tx_ms", 100), f"{path}.bfd.tx_ms", 10, 60000)
        ha.rx_ms = r.integer(bb.get("rx_ms", 100), f"{path}.bfd.rx_ms", 10, 60000)
        ha.mult = r.integer(bb.get("mult", 3), f"{path}.bfd.mult", 1, 255)
    if "preempt" in hb:
        if not isinstance(hb["preempt"], bool):
            raise r.fail(f"{path}.preempt", f"{show_value(hb['preempt'])} is not true or false")
        ha.preempt = hb["preempt"]
    ha.socket = r.path(hb.get("socket", f"/run/edgelab/{node}-{router}-ha.sock"), f"{path}.socket")
    return ha
