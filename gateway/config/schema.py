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
    tables: {mac_aging: 300, arp_timeout: 300, arp_queue: 16, arp_retries: 3,
             mac_capacity: 65536, mac_per_instance: 8192, sessions_max: 1000000}
    cache: {enabled: true, capacity: 65536, idle_timeout: 10}
    io: block                # block: PACKET_MMAP rings (default); socket: two system calls per frame
    kernel: {tap: ..., tlrs: [...], management: {...}}   # the user-kernel transport: kernel.py
    evi: {site: 1, port: core, address: ..., instances: {...}}  # MAC-in-GRE to other sites: evi.py
    services: {socket: ..., list: [{name, kind: dhcp-relay, ...}]}  # data-plane processes: services.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.config.evi import EviConfig, parse_evi
from gateway.config.kernel import KernelConfig, parse_kernel
from gateway.config.reader import ConfigError, Reader, show_value
from gateway.config.routers import (
    RouterConfig,
    parse_ha,
    parse_half,
    parse_transit,
)
from gateway.config.services import parse_services
from gateway.io.service import ServiceConfig

PORT_ROLES = ("tenant", "uplink", "transit", "management", "core")


@dataclass
class PortConfig:
    name: str
    ifname: str
    role: str
    mtu: int | None = None  # the largest IP packet it sends (routed IPv6 past it: packet too big)


@dataclass
class Record:
    port: str
    vlan: int | None


@dataclass
class InstanceConfig:
    name: str
    records: list[Record]


@dataclass
class TablesConfig:
    mac_aging: float = 300.0
    arp_timeout: float = 300.0
    arp_queue: int = 16
    arp_retries: int = 3
    mac_capacity: int = 65536  # MACs learned in all, and ...
    mac_per_instance: int = 8192  # ... in any one instance: one tenant cannot fill the table for the others
    sessions_max: int = 1_000_000  # connections on the node in all (each SR has its own nat.max_sessions too)


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
    evi: EviConfig | None = None
    services: list[ServiceConfig] = field(default_factory=list)
    services_socket: str = ""


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
        raw,
        "",
        ("node", "ports", "instances"),
        ("control_socket", "routers", "tables", "cache", "io", "kernel", "evi", "services"),
    )
    node = r.name(top["node"], "node")
    sock = r.path(top.get("control_socket", f"/run/edgelab/{node}.sock"), "control_socket")

    ports: dict[str, PortConfig] = {}
    ifnames: dict[str, str] = {}
    for pname, pval in r.named(top["ports"], "ports").items():
        path = f"ports.{pname}"
        r.name(pname, path)
        body = r.mapping(pval, path, ("ifname",), ("role", "mtu"))
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
        mtu = r.integer(body["mtu"], f"{path}.mtu", 1280, 9000) if body.get("mtu") is not None else None
        ports[pname] = PortConfig(pname, ifname, role, mtu)
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
    port_owner: dict[str, list[tuple[str, int, bytes]]] = {}  # instance -> (router half, ip, mac)
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
            parse_half(r, body["dr"], f"{path}.dr", instances, node, name, "dr", port_owner)
            if body.get("dr") is not None
            else None
        )
        sr = (
            parse_half(r, body["sr"], f"{path}.sr", instances, node, name, "sr", port_owner)
            if body.get("sr") is not None
            else None
        )
        transit = None
        if body.get("transit") is not None:
            transit = parse_transit(
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
            ha = parse_ha(r, body["ha"], f"{path}.ha", node, name)
        routers.append(RouterConfig(name, tlr_id, dr, sr, transit, ha))

    tables = TablesConfig()
    if top.get("tables") is not None:
        tb = r.mapping(
            top["tables"],
            "tables",
            (),
            (
                "mac_aging",
                "arp_timeout",
                "arp_queue",
                "arp_retries",
                "mac_capacity",
                "mac_per_instance",
                "sessions_max",
            ),
        )
        if "sessions_max" in tb:
            tables.sessions_max = r.integer(tb["sessions_max"], "tables.sessions_max", 1, 100_000_000)
        if "mac_capacity" in tb:
            tables.mac_capacity = r.integer(tb["mac_capacity"], "tables.mac_capacity", 1, 10_000_000)
        if "mac_per_instance" in tb:
            tables.mac_per_instance = r.integer(tb["mac_per_instance"], "tables.mac_per_instance", 1, 10_000_000)
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
    evi = None
    if top.get("evi") is not None:
        evi = parse_evi(r, top["evi"], ports, instances, node)
        if any(rc.name == "evi" for rc in routers):
            raise r.fail("evi", "a router named 'evi' would clash with the EVI tunnel endpoint; rename the router")
    cfg = Config(node, sock, ports, instances, routers, tables, source, cache, io, kernel, evi)
    if top.get("services") is not None:
        cfg.services_socket, cfg.services = parse_services(r, top["services"], node)
    return cfg
