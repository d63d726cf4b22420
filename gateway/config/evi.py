"""The ``evi`` section: extending EVI service instances to other sites (MAC-in-GRE).

Where this sits: read by the node schema (``schema.py``) after the instances,
so it can name them.  Schema::

    evi:
      site: 1                      # this site's id (1-65535); two edges of one site share it
      port: core                   # the port towards the IP core (role: core)
      address: 10.255.1.1/24       # the tunnel endpoint: outer source of every GRE packet
      gateway: 10.255.1.254        # next hop into the core for sites off that subnet
      mtu: 1500                    # the core's IP MTU on this site's link
      instances: {v100: 5100}      # extended instances -> EVI network id (1-16777215)
      links:                       # static EVI links (discovery adds the others)
        - {site: 2, address: 10.255.2.1, mtu: 1400}   # mtu: the remote site's core MTU
      flood: {v100: [02:00:00:00:00:01]}   # selective flooding: unknown unicast to these MACs
                                           # is sent across (by default it is not)
      arp_suppression: true        # answer ARP for remote hosts learned from the tunnels
      arp_timeout: 300             # ... learned for this long
      socket: /run/edgelab/edge1-evi.sock  # the EVI control process's transport (gateway/evi/agent.py)
      key: s3cret-key              # authenticates every control message (HMAC-SHA256); the EVI
                                   # control process (discovery, MAC advertisement) needs it
      discovery:                   # neighbour discovery (as H3C's ENDP): the mesh without per-pair links
        servers: [10.255.1.1]      # discovery servers' tunnel addresses (one or two; a site is a
                                   # server when its own address is listed)
        interval: 1.0              # registration and MAC advertisement interval, s
        hold: 3.5                  # a site not heard from for this long is removed, s

The overhead is an outer IPv4 header (20 bytes, DF set) and a GRE header with
the key bit (8 bytes) around the inner Ethernet frame (its 14-byte header
included, no 802.1Q tag: the network id names the instance), so an inner frame
fits a link only if 28 + its length <= the link's MTU: a tagged frame of the
trunk grows by 38 bytes on the core, an inner IP packet by 42.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from gateway.config.reader import Reader

MAX_NETID = (1 << 24) - 1


@dataclass
class EviLinkConfig:
    site: int
    address: ipaddress.IPv4Address
    mtu: int | None = None


@dataclass
class DiscoveryConfig:
    servers: list[ipaddress.IPv4Address]
    interval: float = 1.0
    hold: float = 3.5


@dataclass
class EviConfig:
    site: int
    port: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None
    mtu: int
    instances: dict[str, int]
    links: list[EviLinkConfig] = field(default_factory=list)
    flood: dict[str, list[bytes]] = field(default_factory=dict)
    arp_suppression: bool = True
    arp_timeout: float = 300.0
    socket: str = ""
    key: str | None = None
    discovery: DiscoveryConfig | None = None


def parse_evi(r: Reader, value: Any, ports: dict[str, Any], instances: dict[str, Any], node: str) -> EviConfig:
    p = "evi"
    body = r.mapping(
        value,
        p,
        ("site", "port", "address", "instances"),
        ("gateway", "mtu", "links", "flood", "arp_suppression", "arp_timeout", "socket", "key", "discovery"),
    )
    site = r.integer(body["site"], f"{p}.site", 1, 65535)
    port = r.name(body["port"], f"{p}.port")
    if port not in ports:
        raise r.fail(f"{p}.port", f"{port!r} is not a configured port; known ports: {', '.join(ports)}")
    if ports[port].role != "core":
        raise r.fail(f"{p}.port", f"port {port!r} has role {ports[port].role!r}; the EVI port needs role 'core'")
    address = r.interface(body["address"], f"{p}.address")
    gateway = None
    if body.get("gateway") is not None:
        gateway = r.address(body["gateway"], f"{p}.gateway")
        if gateway not in address.network or gateway == address.ip:
            raise r.fail(f"{p}.gateway", f"{gateway} is not another address on {address.network}")
    mtu = r.integer(body.get("mtu", 1500), f"{p}.mtu", 576, 9000)
    for name, inst in instances.items():
        if any(rec.port == port for rec in inst.records):
            raise r.fail(f"instances.{name}", f"has a record on the EVI core port {port!r}, which carries only tunnels")
    if "evi-core" in instances:
        raise r.fail("instances.evi-core", "the name is the EVI core segment's; rename the instance")
    extended: dict[str, int] = {}
    owners: dict[int, str] = {}
    for name, netid in r.named(body["instances"], f"{p}.instances").items():
        path = f"{p}.instances.{name}"
        if name not in instances:
            raise r.fail(path, f"{name!r} is not a configured instance; known: {', '.join(instances) or 'none'}")
        n = r.integer(netid, path, 1, MAX_NETID)
        if n in owners:
            raise r.fail(path, f"network id {n} is already used by instance '{owners[n]}'")
        owners[n] = name
        extended[name] = n
    if not extended:
        raise r.fail(f"{p}.instances", "at least one instance to extend is required")
    links: list[EviLinkConfig] = []
    seen: dict[int, int] = {}
    for i, lv in enumerate(r.sequence(body.get("links") or [], f"{p}.links")):
        path = f"{p}.links[{i}]"
        lb = r.mapping(lv, path, ("site", "address"), ("mtu",))
        lsite = r.integer(lb["site"], f"{path}.site", 1, 65535)
        if lsite == site:
            raise r.fail(f"{path}.site", f"site {lsite} is this site; a link goes to another site")
        laddr = r.address(lb["address"], f"{path}.address")
        if laddr == address.ip:
            raise r.fail(f"{path}.address", f"{laddr} is this edge's own tunnel address")
        if int(laddr) in seen:
            raise r.fail(f"{path}.address", f"{laddr} is already the address of links[{seen[int(laddr)]}]")
        if laddr not in address.network and gateway is None:
            raise r.fail(f"{path}.address", f"{laddr} is off {address.network}: give evi.gateway, the core next hop")
        seen[int(laddr)] = i
        lmtu = r.integer(lb["mtu"], f"{path}.mtu", 576, 9000) if "mtu" in lb else None
        links.append(EviLinkConfig(lsite, laddr, lmtu))
    flood: dict[str, list[bytes]] = {}
    for name, macs in r.named(body.get("flood") or {}, f"{p}.flood").items():
        path = f"{p}.flood.{name}"
        if name not in extended:
            raise r.fail(path, f"{name!r} is not an extended instance (evi.instances)")
        flood[name] = [r.mac(m, f"{path}[{j}]") for j, m in enumerate(r.sequence(macs, path))]
    cfg = EviConfig(site, port, address, gateway, mtu, extended, links, flood)
    if "arp_suppression" in body:
        if not isinstance(body["arp_suppression"], bool):
            raise r.fail(f"{p}.arp_suppression", f"{body['arp_suppression']!r} is not true or false")
        cfg.arp_suppression = body["arp_suppression"]
    if "arp_timeout" in body:
        cfg.arp_timeout = r.number(body["arp_timeout"], f"{p}.arp_timeout", 1)
    cfg.socket = r.path(body.get("socket", f"/run/edgelab/{node}-evi.sock"), f"{p}.socket")
    if "key" in body:
        key = body["key"]
        if not isinstance(key, str) or len(key) < 8:
            raise r.fail(f"{p}.key", "the authentication key is a string of at least 8 characters")
        cfg.key = key
    if body.get("discovery") is not None:
        path = f"{p}.discovery"
        if cfg.key is None:
            raise r.fail(path, "discovery needs evi.key, the key that authenticates its messages")
        db = r.mapping(body["discovery"], path, ("servers",), ("interval", "hold"))
        servers = [
            r.address(v, f"{path}.servers[{i}]") for i, v in enumerate(r.sequence(db["servers"], f"{path}.servers"))
        ]
        if not 1 <= len(servers) <= 2:
            raise r.fail(f"{path}.servers", f"{len(servers)} servers; give one, or two for redundancy")
        for i, server in enumerate(servers):
            if server not in address.network and gateway is None:
                raise r.fail(f"{path}.servers[{i}]", f"{server} is off {address.network}: give evi.gateway")
        interval = r.number(db.get("interval", 1.0), f"{path}.interval", 0.1, 60)
        hold = r.number(db.get("hold", 3.5 * interval), f"{path}.hold", 0.3, 600)
        if hold <= interval:
            raise r.fail(f"{path}.hold", f"{hold} s is not longer than the interval ({interval} s)")
        cfg.discovery = DiscoveryConfig(servers, interval, hold)
    return cfg
