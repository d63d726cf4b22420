"""Forwarding information base: longest-prefix match over IPv4 or IPv6 routes.

Where this sits: read by the ``dr`` and ``sr`` stages for every routed packet;
written at start from the config and at run time by the control socket.

The routes are kept in one dict per prefix length, keyed by the network
number (``prefix >> (bits - plen)``, not the masked address: the masked
addresses of /24s all end in eight zero bits, which Python's int hash passes
on to the dict's slot index, and a million of them collided into long probe
chains).  That is the table's truth: ``get``, ``routes``, a removal's next
best.

An IPv4 lookup reads a multibit trie built beside it, as a router's FIB is
(DPDK's ``rte_lpm`` is the same idea with strides of 24 and 8 bits): four
levels of 256 slots, one per byte of the address.  A slot holds the best
route for its range (prefix expansion: a /20 fills 16 slots of the third
level), or the level below where a longer prefix lies, or None (then the
default route, kept aside so that changing it touches no slot).  A lookup is
at most four list reads, whatever the number of routes; a level of 2 KiB is
made only below a slot that has a longer prefix, and given back with the
last of them (a count per slot), so a tenant router's FIB of a few routes
is a few KiB.  ``edgelab bench routes``, against the dicts probed length by
length the same hour: a working set of 1,000 destinations 18 ns at 1k routes
(46 before) and 51 at 1M (101); destinations only the default route covers
14 and 79 ns (224 and 382); 1M routes take 230 MB (168), installed in the
same 24 s.

IPv6 (``Fib(epoch, bits=128)``) probes the dicts from the longest length
present down to the shortest: at most 129 dict lookups, usually a handful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gateway.epoch import Epoch
from gateway.headers import ip_str
from gateway.headers6 import ip6_str

# A model.RouterPort: not imported, the tables sit below the model (a route shows its ``label``).
RouterPort = Any


@dataclass(eq=False)
class Route:
    """A FIB entry.

    ``port`` is the router port whose segment holds the next hop (None for a
    route through the transit switch); ``via`` is the next hop address, None
    for a connected route (the next hop is the destination itself).
    """

    prefix: int
    plen: int
    via: int | None
    port: RouterPort | None
    transit: bool = False
    origin: str = "static"
    # Equal-cost next hops (via, port); when set, a hash of the flow's 5-tuple picks one,
    # so a flow stays on one next hop.  ``via``/``port`` are then the first of them.
    ecmp: list[tuple[int, RouterPort]] | None = None
    bits: int = 32  # the address family's width: 128 for IPv6 (set by the Fib it is added to)

    def pick(self, flow_hash: int) -> tuple[int, RouterPort]:
        ecmp = self.ecmp or [(self.via or 0, self.port)]  # type: ignore[list-item]
        return ecmp[flow_hash % len(ecmp)]

    def to_dict(self) -> dict[str, Any]:
        text = ip_str if self.bits == 32 else ip6_str
        # (An IPv6 route over the internal transit names the peer by its IPv4 transit address.)
        vtext = ip_str if self.transit else text
        via: Any = vtext(self.via) if self.via is not None else None
        if self.ecmp:
            via = [vtext(v) for v, _p in self.ecmp]
        return {
            "prefix": f"{text(self.prefix)}/{self.plen}",
            "via": via,
            "port": "transit" if self.transit else (self.port.label if self.port else None),
            "origin": self.origin,
        }


def mask(plen: int, bits: int = 32) -> int:
    full = (1 << bits) - 1
    return (full << (bits - plen)) & full if plen else 0


# The IPv4 trie: four levels of 256 slots, by the address's four bytes (depths 8, 16, 24, 32).
STRIDE: Final = 8
SLOTS: Final = 256
BYTE: Final = 0xFF


def _push(node: list[Any], i: int, route: Route) -> None:
    """``route`` into slot ``i`` of ``node`` and, where the slot is a level below, into each
    of its slots, wherever it is at least as long as what the slot holds."""
    held = node[i]
    if isinstance(held, list):
        for k in range(len(held)):
            _push(held, k, route)
    elif held is None or held.plen <= route.plen:
        node[i] = route


def _pull(node: list[Any], i: int, route: Route, best: Route | None) -> None:
    """``best`` in place of ``route`` in slot ``i`` of ``node`` and the levels below it."""
    held = node[i]
    if isinstance(held, list):
        for k in range(len(held)):
            _pull(held, k, route, best)
    elif held is route:
        node[i] = best


class Fib:
    def __init__(self, epoch: Epoch, bits: int = 32) -> None:
        self.epoch = epoch
        self.bits = bits
        self._by_len: dict[int, dict[int, Route]] = {}
        self._lens: list[int] = []  # descending
        self._probe: list[tuple[dict[int, Route], int]] = []  # (table, shift) per length, longest first
        self.generation = 0
        # IPv4: the trie (the module's docstring), the default route aside, and for each slot
        # with a level below it, (depth, network number) -> the prefixes longer than depth there.
        self.v4 = bits == 32
        self._root: list[Any] = [None] * SLOTS if self.v4 else []
        self._default: Route | None = None
        self._below: dict[tuple[int, int], int] = {}

    def _reprobe(self) -> None:
        self._lens = sorted(self._by_len, reverse=True)
        self._probe = [(self._by_len[plen], self.bits - plen) for plen in self._lens]

    def add(self, route: Route) -> None:
        if not 0 <= route.plen <= self.bits:
            raise ValueError(f"prefix length {route.plen} is not between 0 and {self.bits}")
        route.bits = self.bits
        route.prefix &= mask(route.plen, self.bits)
        table = self._by_len.get(route.plen)
        if table is None:
            table = self._by_len[route.plen] = {}
            self._reprobe()
        key = route.prefix >> (self.bits - route.plen)
        replaced = table.get(key)
        table[key] = route
        if self.v4:
            self._trie_add(route, replaced is None)
        self.generation += 1
        self.epoch.bump()

    def _trie_add(self, route: Route, new: bool) -> None:
        plen, prefix = route.plen, route.prefix
        if plen == 0:
            self._default = route
            return
        path, first, depth = self._slots(prefix, plen, new)
        for i in range(first, first + (1 << (depth - plen))):
            _push(path[-1], i, route)

    def _slots(self, prefix: int, plen: int, new: bool) -> tuple[list[list[Any]], int, int]:
        """The levels down to the one whose slots a prefix of ``plen`` fills (made where missing:
        each new slot holds what its parent slot held), that one's first slot and its depth;
        ``new``: a prefix not there before, counted below each slot it passes."""
        path = [self._root]
        depth = STRIDE
        while depth < plen:
            node, i = path[-1], (prefix >> (32 - depth)) & BYTE
            below = node[i]
            if not isinstance(below, list):
                below = node[i] = [below] * SLOTS
            if new:
                key = (depth, prefix >> (32 - depth))
                self._below[key] = self._below.get(key, 0) + 1
            path.append(below)
            depth += STRIDE
        return path, (prefix >> (32 - depth)) & BYTE, depth

    def _trie_remove(self, route: Route) -> None:
        plen, prefix = route.plen, route.prefix
        if plen == 0:
            self._default = None
            return
        path, first, depth = self._slots(prefix, plen, False)
        best = self._best(prefix, plen)
        for i in range(first, first + (1 << (depth - plen))):
            _pull(path[-1], i, route, best)
        # A level with no prefix longer than its parent slot's depth left: back to one slot,
        # the best route of at most that depth.
        for level in range(len(path) - 2, -1, -1):
            d = STRIDE * (level + 1)
            key = (d, prefix >> (32 - d))
            left = self._below[key] - 1
            if left:
                self._below[key] = left
            else:
                del self._below[key]
                path[level][(prefix >> (32 - d)) & BYTE] = self._best(prefix, d + 1)

    def _best(self, dst: int, shorter_than: int) -> Route | None:
        """The longest route to ``dst`` of a length from 1 to ``shorter_than - 1`` (the dicts probed)."""
        for table, shift in self._probe:
            if 0 < self.bits - shift < shorter_than:
                route = table.get(dst >> shift)
                if route is not None:
                    return route
        return None

    def remove(self, prefix: int, plen: int) -> Route | None:
        table = self._by_len.get(plen)
        if not table:
            return None
        route = table.pop(prefix >> (self.bits - plen), None)
        if not table:
            del self._by_len[plen]
            self._reprobe()
        if route is not None:
            if self.v4:
                self._trie_remove(route)
            self.generation += 1
            self.epoch.bump()
        return route

    def get(self, prefix: int, plen: int) -> Route | None:
        """The route for exactly ``prefix``/``plen`` (no longest match)."""
        table = self._by_len.get(plen)
        return table.get(prefix >> (self.bits - plen)) if table else None

    def lookup(self, dst: int) -> Route | None:
        if self.v4:
            node = self._root[dst >> 24]
            if isinstance(node, list):
                node = node[(dst >> 16) & BYTE]
                if isinstance(node, list):
                    node = node[(dst >> 8) & BYTE]
                    if isinstance(node, list):
                        node = node[dst & BYTE]
            return self._default if node is None else node  # type: ignore[no-any-return]
        for table, shift in self._probe:
            route = table.get(dst >> shift)
            if route is not None:
                return route
        return None

    def routes(self) -> list[Route]:
        return [r for plen in self._lens for r in self._by_len[plen].values()]

    def __len__(self) -> int:
        return sum(len(t) for t in self._by_len.values())
