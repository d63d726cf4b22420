"""Gateway configuration: YAML in, validated dataclasses out.

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
    io: block                # block: PACKET_MMAP rings (default); socket: two system calls per frame; ring: experimental
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.headers import mac_bytes
from gateway.services.rules import (
    PROTOS,
    DnatRule,
    FirewallConfig,
    FirewallRule,
    NatConfig,
    OneToOne,
    SnatRule,
)

PORT_ROLES = ("tenant", "uplink", "transit", "management")


class ConfigError(Exception):
    """A configuration the gateway cannot run; the message is for the user."""


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


class _Reader:
    """Walks the parsed YAML, keeping the field path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {message}")

    def mapping(
        self, value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_show(value)}")
        for key in value:
            if key not in required and key not in optional:
                allowed = ", ".join(required + optional)
                raise self.fail(f"{path}.{key}" if path else str(key), f"unknown field; expected one of: {allowed}")
        for key in required:
            if key not in value:
                raise self.fail(path or "(top level)", f"missing required field '{key}'")
        return value

    def named(self, value: Any, path: str) -> dict[str, Any]:
        """A mapping of user-chosen names to bodies (ports, instances)."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping of names, got {_show(value)}")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_show(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise self.fail(path, f"{_show(value)} is not a name (a non-empty string without spaces)")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(path, f"{_show(value)} is not an integer in {low}..{high}")
        return value

    def number(self, value: Any, path: str, low: float, high: float = 1e9) -> float:
        # ``not low <= value <= high`` also refuses NaN, which fails every comparison.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self.fail(path, f"{_show(value)} is not a number in {low:g}..{high:g}")
        return float(value)

    def choice(self, value: Any, path: str, choices: tuple[str, ...] | dict[str, Any], what: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, f"{_show(value)} is not {what}")
        return value

    def path(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.startswith("/") or "\0" in value or len(value) > 107:
            raise self.fail(path, f"{_show(value)} is not an absolute path of a unix socket (at most 107 bytes)")
        return value

    def interface(self, value: Any, path: str) -> ipaddress.IPv4Interface:
        try:
            if not isinstance(value, str) or "/" not in value:
                raise ValueError
            return ipaddress.IPv4Interface(value)
        except ValueError:
            raise self.fail(
                path, f"{_show(value)} is not an IPv4 address with a prefix length (like 172.16.10.1/24)"
            ) from None

    def network(self, value: Any, path: str) -> ipaddress.IPv4Network:
        try:
            if not isinstance(value, str):
                raise ValueError
            return ipaddress.IPv4Network(value)
        except ValueError:
            raise self.fail(
                path, f"{_show(value)} is not an IPv4 prefix with host bits zero (like 10.0.0.0/8)"
            ) from None

    def address(self, value: Any, path: str) -> ipaddress.IPv4Address:
        try:
            if not isinstance(value, str):
                raise ValueError
            return ipaddress.IPv4Address(value)
        except ValueError:
            raise self.fail(path, f"{_show(value)} is not an IPv4 address (like 192.0.2.1)") from None

    def mac(self, value: Any, path: str) -> bytes:
        try:
            if not isinstance(value, str):
                raise ValueError(f"{_show(value)} is not a MAC address (expected like 02:00:00:00:00:01)")
            raw = mac_bytes(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if raw[0] & 1:
            raise self.fail(path, f"{value!r} is a multicast MAC; a router port needs a unicast one")
        return raw


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return repr(value)


def derived_mac(*parts: str) -> bytes:
    """A stable locally administered MAC for a router port with none configured."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return bytes([0x02]) + digest[:5]


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
    r = _Reader(source)
    top = r.mapping(raw, "", ("node", "ports", "instances"), ("control_socket", "routers", "tables", "cache", "io"))
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
                raise r.fail("cache.enabled", f"{_show(cb['enabled'])} is not true or false")
            cache.enabled = cb["enabled"]
        if "capacity" in cb:
            cache.capacity = r.integer(cb["capacity"], "cache.capacity", 1, 10_000_000)
        if "idle_timeout" in cb:
            cache.idle_timeout = r.number(cb["idle_timeout"], "cache.idle_timeout", 0.1)
    io = top.get("io", "block")
    if io not in ("ring", "block", "socket"):
        raise r.fail(
            "io", f"{_show(io)} is not socket (one system call per frame), ring or block (PACKET_MMAP, experimental)"
        )
    return Config(node, sock, ports, instances, routers, tables, source, cache, io)


def _half(
    r: _Reader,
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
        _unique_names(r, rules, f"{path}.firewall.rules")
        firewall = FirewallConfig(rules)
    return RouterHalf(ports, routes, nat, firewall)


def _transit(
    r: _Reader,
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


def _ha(r: _Reader, value: Any, path: str, node: str, router: str) -> HaConfig:
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
            raise r.fail(f"{path}.preempt", f"{_show(hb['preempt'])} is not true or false")
        ha.preempt = hb["preempt"]
    ha.socket = r.path(hb.get("socket", f"/run/edgelab/{node}-{router}-ha.sock"), f"{path}.socket")
    return ha


# -- services (also used by the control socket for rules added at run time) -------------
TIMEOUT_KEYS = ("tcp_established", "tcp_transitory", "tcp_closed", "udp", "icmp", "other")


def parse_nat(r: _Reader, value: Any, path: str) -> NatConfig:
    body = r.mapping(value, path, (), ("snat", "dnat", "one_to_one", "max_sessions", "timeouts"))
    nat = NatConfig()
    nat.snat = [
        parse_snat(r, v, f"{path}.snat[{i}]", f"snat-{i + 1}")
        for i, v in enumerate(r.sequence(body.get("snat") or [], f"{path}.snat"))
    ]
    nat.dnat = [
        parse_dnat(r, v, f"{path}.dnat[{i}]", f"dnat-{i + 1}")
        for i, v in enumerate(r.sequence(body.get("dnat") or [], f"{path}.dnat"))
    ]
    nat.one_to_one = [
        parse_one_to_one(r, v, f"{path}.one_to_one[{i}]", f"one-to-one-{i + 1}")
        for i, v in enumerate(r.sequence(body.get("one_to_one") or [], f"{path}.one_to_one"))
    ]
    _unique_names(r, [*nat.snat, *nat.dnat, *nat.one_to_one], path)
    if "max_sessions" in body:
        nat.max_sessions = r.integer(body["max_sessions"], f"{path}.max_sessions", 1, 10_000_000)
    if body.get("timeouts") is not None:
        tb = r.mapping(body["timeouts"], f"{path}.timeouts", (), TIMEOUT_KEYS)
        nat.timeouts = {k: r.number(v, f"{path}.timeouts.{k}", 1) for k, v in tb.items()}
    publics: dict[int, str] = {}
    for rule in nat.one_to_one:
        if rule.public in publics:
            raise r.fail(path, f"public address {ipaddress.IPv4Address(rule.public)} is used by two 1:1 rules")
        publics[rule.public] = rule.name
    return nat


def parse_snat(r: _Reader, value: Any, path: str, default_name: str) -> SnatRule:
    b = r.mapping(value, path, ("source", "pool"), ("ports", "name"))
    pool_raw = b["pool"]
    if isinstance(pool_raw, str) and "/" in pool_raw:
        net = r.network(pool_raw, f"{path}.pool")
        if net.num_addresses > 65536:
            raise r.fail(f"{path}.pool", f"{pool_raw!r} is larger than a /16; name a smaller pool")
        pool = [int(a) for a in net] if net.prefixlen >= 31 else [int(a) for a in net.hosts()]
    else:
        items = pool_raw if isinstance(pool_raw, list) else [pool_raw]
        pool = [int(r.address(a, f"{path}.pool[{i}]")) for i, a in enumerate(items)]
    if not pool:
        raise r.fail(f"{path}.pool", "the pool has no address")
    lo, hi = parse_range(r, b.get("ports", "1024-65535"), f"{path}.ports", 1)
    name = r.name(b.get("name", default_name), f"{path}.name")
    return SnatRule(name, r.network(b["source"], f"{path}.source"), pool, lo, hi)


def parse_dnat(r: _Reader, value: Any, path: str, default_name: str) -> DnatRule:
    b = r.mapping(value, path, ("public", "proto", "port", "to"), ("to_port", "name"))
    proto = r.choice(
        b["proto"],
        f"{path}.proto",
        ("tcp", "udp"),
        "tcp or udp (port forwarding needs ports; use one_to_one for a whole address)",
    )
    port = r.integer(b["port"], f"{path}.port", 1, 65535)
    to_port = r.integer(b.get("to_port", port), f"{path}.to_port", 1, 65535)
    name = r.name(b.get("name", default_name), f"{path}.name")
    return DnatRule(
        name,
        int(r.address(b["public"], f"{path}.public")),
        PROTOS[proto] or 0,
        port,
        int(r.address(b["to"], f"{path}.to")),
        to_port,
    )


def parse_one_to_one(r: _Reader, value: Any, path: str, default_name: str) -> OneToOne:
    b = r.mapping(value, path, ("public", "private"), ("name",))
    name = r.name(b.get("name", default_name), f"{path}.name")
    return OneToOne(
        name, int(r.address(b["public"], f"{path}.public")), int(r.address(b["private"], f"{path}.private"))
    )


def parse_fw_rule(r: _Reader, value: Any, path: str, default_name: str) -> FirewallRule:
    b = r.mapping(value, path, ("action",), ("name", "direction", "proto", "src", "dst", "dport"))
    action = r.choice(b["action"], f"{path}.action", ("allow", "drop", "reject"), "allow, drop or reject")
    direction = r.choice(b.get("direction", "any"), f"{path}.direction", ("in", "out", "any"), "in, out or any")
    proto = r.choice(b.get("proto", "any"), f"{path}.proto", PROTOS, "tcp, udp, icmp or any")
    dport = None
    if b.get("dport") not in (None, "any"):
        if PROTOS[proto] not in (6, 17):
            raise r.fail(f"{path}.dport", "a destination port needs proto tcp or udp")
        dport = parse_range(r, b["dport"], f"{path}.dport", 1)
    src = r.network(b["src"], f"{path}.src") if b.get("src") not in (None, "any") else None
    dst = r.network(b["dst"], f"{path}.dst") if b.get("dst") not in (None, "any") else None
    name = r.name(b.get("name", default_name), f"{path}.name")
    return FirewallRule(name, action, direction, PROTOS[proto], src, dst, dport)


def parse_range(r: _Reader, value: Any, path: str, low: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return r.integer(value, path, low, 65535), value
    text = str(value)
    parts = text.split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        lo, hi = 0, -1
    if not (low <= lo <= hi <= 65535):
        raise r.fail(path, f"{_show(value)} is not a port or port range like 1024-65535")
    return lo, hi


def _unique_names(r: _Reader, rules: list[Any], path: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise r.fail(path, f"two rules are named {rule.name!r}; rule names must be unique")
        seen.add(rule.name)
