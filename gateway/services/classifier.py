"""Tuple-space search over the firewall's ordered rules: the first matching rule without a scan.

Where this sits: ``firewall.py`` rebuilds a :class:`Classifier` whenever its
rules change and asks it for the first rule (in order) that matches a new
connection.

After Open vSwitch's classifier (and Srinivasan et al., "Packet classification
using tuple space search"): rules are grouped by their *shape* — whether they
name a direction, a protocol, the prefix lengths of their source and
destination, whether their port is one port, a range, or none.  Every rule
of one shape becomes an exact key of that shape's dict; a packet is looked up
once per shape, with its fields masked the same way.  A port range cannot be
an exact key: its shape's key leaves the port out and the few rules under a
key check their range.  Each candidate carries its position in the rule list;
the lowest wins, and shapes are probed in the order of their best position so
the search stops as soon as no later shape can hold an earlier rule.

Cost: one dict probe per shape in use — a handful for a rule set of any size
(``edgelab bench scale`` measures it from 10 to 10,000 rules).
"""

from __future__ import annotations

from typing import Any

from gateway.headers import IPPROTO_TCP, IPPROTO_UDP

NO_PORT, ONE_PORT, RANGE = 0, 1, 2


def _mask(plen: int, bits: int) -> int:
    full = (1 << bits) - 1
    return (full << (bits - plen)) & full if plen else 0


class _Shape:
    __slots__ = ("has_dir", "has_proto", "smask", "dmask", "port", "table", "best")

    def __init__(self, has_dir: bool, has_proto: bool, splen: int, dplen: int, port: int, bits: int) -> None:
        self.has_dir, self.has_proto = has_dir, has_proto
        self.smask, self.dmask = _mask(splen, bits), _mask(dplen, bits)
        self.port = port
        self.table: dict[tuple[Any, ...], list[tuple[int, Any]]] = {}
        self.best = 1 << 62  # the lowest rule position under this shape


def _shape_of(rule: Any) -> tuple[bool, bool, int, int, int]:
    port = NO_PORT if rule.dport is None else (ONE_PORT if rule.dport[0] == rule.dport[1] else RANGE)
    return (
        rule.direction != "any",
        rule.proto is not None,
        rule.src.prefixlen if rule.src is not None else 0,
        rule.dst.prefixlen if rule.dst is not None else 0,
        port,
    )


class Classifier:
    """The rules of one address family (``bits``: 32 or 128): those naming addresses of the
    other family are left out, their positions kept."""

    def __init__(self, rules: list[Any], bits: int = 32) -> None:
        shapes: dict[tuple[bool, bool, int, int, int], _Shape] = {}
        family = 4 if bits == 32 else 6
        for pos, rule in enumerate(rules):
            if rule.family not in (None, family):
                continue
            form = _shape_of(rule)
            shape = shapes.get(form)
            if shape is None:
                shape = shapes[form] = _Shape(*form, bits)
            key = (
                (rule.direction == "in") if shape.has_dir else None,
                rule.proto if shape.has_proto else None,
                int(rule.src.network_address) if rule.src is not None else 0,
                int(rule.dst.network_address) if rule.dst is not None else 0,
                rule.dport[0] if shape.port == ONE_PORT else None,
            )
            shape.table.setdefault(key, []).append((pos, rule))
            shape.best = min(shape.best, pos)
        self.shapes = sorted(shapes.values(), key=lambda s: s.best)

    def __len__(self) -> int:
        return len(self.shapes)

    def first(self, inbound: bool, proto: int, src: int, dst: int, dport: int) -> Any:
        """The first rule (in the list's order) matching the connection, or None."""
        best_pos, best = 1 << 62, None
        has_ports = proto == IPPROTO_TCP or proto == IPPROTO_UDP
        for shape in self.shapes:
            if shape.best >= best_pos:
                break  # this shape and every later one hold only later rules
            port = shape.port
            if port != NO_PORT and not has_ports:
                continue  # a port rule never matches a protocol without ports
            key = (
                inbound if shape.has_dir else None,
                proto if shape.has_proto else None,
                src & shape.smask,
                dst & shape.dmask,
                dport if port == ONE_PORT else None,
            )
            found = shape.table.get(key)
            if found is None:
                continue
            for pos, rule in found:  # in position order
                if pos >= best_pos:
                    break
                if port == RANGE and not rule.dport[0] <= dport <= rule.dport[1]:
                    continue
                best_pos, best = pos, rule
                break
        return best
