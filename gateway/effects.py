"""What the stages did to one slow-path packet, recorded for the cache.

Where this sits: a slow-path packet carries an :class:`Effects` (``pkt.fx``)
through the stages; each stage records what it read (the field set the
cache entry must match on), what state it depends on, and why the walk must
not be cached at all.  The cache (``cache.py``) consumes this and nothing
else, as Open vSwitch's translation returns its wildcards and ``slow``
reasons to the megaflow cache.  Stages and services import this module, never
the cache.
"""

from __future__ import annotations

from typing import Any, Final

# Field sets a stage may read, and the subtables they make.
L2: Final = 0  # in port, VLAN, both MACs, EtherType
L3: Final = 1  # + IPv4 source and destination (the DR's uRPF check reads the source)
L4: Final = 2  # + IPv4 source, protocol, ports (or ICMP echo id)
TUN: Final = 3  # a tunnel packet: outer MACs, outer addresses, the GRE header, inner MACs and EtherType
L3_6: Final = 4  # IPv6: + source and destination (no extension headers: others take the stages)
L4_6: Final = 5  # IPv6: + next header, addresses, ports (or ICMPv6 echo id)
MASK_NAMES: Final = ("l2", "l3", "l4", "tunnel", "l3v6", "l4v6")


class Effects:
    __slots__ = (
        "mask",
        "deps",
        "uncacheable",
        "ttl_dec",
        "conn",
        "conn_dir",
        "alg",
        "mac_touch",
        "header",
        "epoch",
        "strip",
        "push",
        "max_len",
        "in_port",
        "vlan",
    )

    def __init__(self, header: bytes, epoch: int, in_port: Any = None, vlan: int | None = None) -> None:
        self.epoch = epoch  # dependencies read from here on are at least this fresh
        self.mask = L2
        self.deps: list[tuple[Any, str, Any]] = []
        self.uncacheable: str | None = None
        self.ttl_dec = 0
        self.conn: Any = None  # (conntrack table, entry) a hit must touch
        self.conn_dir = 0
        self.alg: Any = None  # a connection an ALG reads: hits apply its TCP offsets, payload misses
        self.mac_touch: Any = None  # the source MAC's entry, refreshed by every hit
        self.header = header  # the frame's first bytes as received
        self.in_port = in_port  # ... and where (a decapsulated packet's in_port becomes its EVI link)
        self.vlan = vlan
        # Tunnels: bytes of outer headers removed from the front (decapsulation), or added in
        # front of the frame as it was switched (encapsulation); the rewrites are the inner frame's.
        self.strip = 0
        self.push = 0
        self.max_len = 0  # the largest frame a hit may send (a tunnel's, an IPv6 next link's MTU); 0: any

    def read(self, mask: int) -> None:
        if mask > self.mask:
            self.mask = mask

    def depend(self, obj: Any, attr: str) -> None:
        """The entry is valid while ``obj.attr`` keeps the value it has now."""
        self.deps.append((obj, attr, getattr(obj, attr)))

    def no_cache(self, reason: str) -> None:
        if self.uncacheable is None:
            self.uncacheable = reason
