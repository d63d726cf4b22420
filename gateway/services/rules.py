"""NAT and firewall rules: plain data with their match logic and hit counters.

Where this sits: built by ``config.py`` (from the YAML) and by the control
socket (at run time); read by ``services/nat.py`` and
``services/firewall.py``.  A removed rule is marked inactive, so connections
that were set up by it are torn down on their next packet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from gateway.headers import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ip_str

PROTOS = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "icmp": IPPROTO_ICMP, "icmpv6": 58, "any": None}
PROTO_NAMES = {v: k for k, v in PROTOS.items()}


@dataclass(eq=False)
class SnatRule:
    """Tenant sources -> a pool of public addresses, ports from a range."""

    name: str
    source: ipaddress.IPv4Network
    pool: list[int]
    port_lo: int = 1024
    port_hi: int = 65535
    hits: int = 0
    active: bool = True

    def __post_init__(self) -> None:
        # The source network as two ints (read for every new outbound connection).
        self._mask = int(self.source.netmask)
        self._net = int(self.source.network_address)

    def matches(self, src: int) -> bool:
        return src & self._mask == self._net

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "snat",
            "source": str(self.source),
            "pool": [ip_str(a) for a in self.pool],
            "ports": f"{self.port_lo}-{self.port_hi}",
            "hits": self.hits,
        }


@dataclass(eq=False)
class DnatRule:
    """Port forwarding: public address:port -> a tenant host:port."""

    name: str
    public: int
    proto: int
    port: int
    to: int
    to_port: int
    hits: int = 0
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "dnat",
            "public": ip_str(self.public),
            "proto": PROTO_NAMES[self.proto],
            "port": self.port,
            "to": ip_str(self.to),
            "to_port": self.to_port,
            "hits": self.hits,
        }


@dataclass(eq=False)
class OneToOne:
    """A tenant host with its own public address, both directions, ports unchanged."""

    name: str
    public: int
    private: int
    hits: int = 0
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "one_to_one",
            "public": ip_str(self.public),
            "private": ip_str(self.private),
            "hits": self.hits,
        }


@dataclass(eq=False)
class FirewallRule:
    """One ordered firewall rule; ``None`` fields match anything."""

    name: str
    action: str  # allow | drop | reject
    direction: str = "any"  # in (from the uplink) | out (from the tenants) | any
    proto: int | None = None
    src: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    dport: tuple[int, int] | None = None
    hits: int = 0
    active: bool = True

    @property
    def family(self) -> int | None:
        """4 or 6 for a rule that names addresses (of that family), None for one that matches both."""
        net = self.src or self.dst
        return net.version if net is not None else None

    def matches(self, inbound: bool, proto: int, src: int, dst: int, dport: int) -> bool:
        if self.direction == "in" and not inbound or self.direction == "out" and inbound:
            return False
        if self.family is not None and self.family != (6 if src > 0xFFFFFFFF else 4):
            return False
        if self.proto is not None and proto != self.proto:
            return False
        if self.src is not None and src & int(self.src.netmask) != int(self.src.network_address):
            return False
        if self.dst is not None and dst & int(self.dst.netmask) != int(self.dst.network_address):
            return False
        if self.dport is not None and not (
            proto in (IPPROTO_TCP, IPPROTO_UDP) and self.dport[0] <= dport <= self.dport[1]
        ):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        dport = None
        if self.dport is not None:
            dport = str(self.dport[0]) if self.dport[0] == self.dport[1] else f"{self.dport[0]}-{self.dport[1]}"
        return {
            "name": self.name,
            "action": self.action,
            "direction": self.direction,
            "proto": PROTO_NAMES.get(self.proto, str(self.proto)),
            "src": str(self.src) if self.src else "any",
            "dst": str(self.dst) if self.dst else "any",
            "dport": dport or "any",
            "hits": self.hits,
        }


@dataclass
class NatConfig:
    snat: list[SnatRule] = field(default_factory=list)
    dnat: list[DnatRule] = field(default_factory=list)
    one_to_one: list[OneToOne] = field(default_factory=list)
    max_sessions: int = 65536
    timeouts: dict[str, float] = field(default_factory=dict)

    def publics(self) -> set[int]:
        """Every public address of the rules (the SR answers ARP for them)."""
        out = {a for r in self.snat for a in r.pool}
        return out | {r.public for r in self.dnat} | {r.public for r in self.one_to_one}


@dataclass
class FirewallConfig:
    rules: list[FirewallRule] = field(default_factory=list)
