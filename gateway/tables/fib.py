"""Forwarding information base: longest-prefix match over IPv4 or IPv6 routes.

Where this sits: read by the ``dr`` and ``sr`` stages for every routed packet;
written at start from the config and at run time by the control socket.

One dict per prefix length, probed from the longest length present down to
the shortest: at most 33 dict lookups (129 for IPv6: ``Fib(epoch, bits=128)``,
the same mechanism over 128-bit ints), usually a handful, with no scan of the
routes.  A table is keyed by the network number (``prefix >> (bits - plen)``),
not the masked address: the masked addresses of /24s all end in eight zero
bits, which Python's int hash passes on to the dict's slot index, and a
million of them collided into long probe chains (``edgelab bench routes``: a
lookup at 1M routes cost 1.9x that at 1k; keyed by network number, see the
README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


class Fib:
    def __init__(self, epoch: Epoch, bits: int = 32) -> None:
        self.epoch = epoch
        self.bits = bits
        self._by_len: dict[int, dict[int, Route]] = {}
        self._lens: list[int] = []  # descending
        self._probe: list[tuple[dict[int, Route], int]] = []  # (table, shift) per length, longest first
        self.generation = 0

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
        table[route.prefix >> (self.bits - route.plen)] = route
        self.generation += 1
        self.epoch.bump()

    def remove(self, prefix: int, plen: int) -> Route | None:
        table = self._by_len.get(plen)
        if not table:
            return None
        route = table.pop(prefix >> (self.bits - plen), None)
        if not table:
            del self._by_len[plen]
            self._reprobe()
        if route is not None:
            self.generation += 1
            self.epoch.bump()
        return route

    def get(self, prefix: int, plen: int) -> Route | None:
        """The route for exactly ``prefix``/``plen`` (no longest match)."""
        table = self._by_len.get(plen)
        return table.get(prefix >> (self.bits - plen)) if table else None

    def lookup(self, dst: int) -> Route | None:
        for table, shift in self._probe:
            route = table.get(dst >> shift)
            if route is not None:
                return route
        return None

    def routes(self) -> list[Route]:
        return [r for plen in self._lens for r in self._by_len[plen].values()]

    def __len__(self) -> int:
        return sum(len(t) for t in self._by_len.values())
