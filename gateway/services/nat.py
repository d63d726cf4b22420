"""NAT: which translation a new connection gets, and the public ports in use.

Where this sits: the ``sr`` stage asks :meth:`Nat.match_dnat` before routing
and :meth:`Nat.choose_snat` after routing, for the first packet of a
connection only; conntrack (``conntrack.py``) applies the translation to
every packet after that and calls :meth:`Nat.release` when the connection
goes away.

Allocation: every connection gets its own public (address, port) per
protocol — one public endpoint is never handed to two sessions, so two
tenants using the same source port both work.  The tenant's own source port
is kept when it is free (port preservation, RFC 4787); otherwise the range's
ports never handed out yet, in order, then those given back, the longest free
first (:class:`Ports`).  ICMP echo identifiers are allocated like ports.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from gateway.epoch import Epoch
from gateway.headers import ip_str
from gateway.l4 import PORTS, FlowTuple
from gateway.services.rules import DnatRule, NatConfig, OneToOne, SnatRule

EXHAUSTED: Final = "exhausted"


class Ports:
    """Where the next free port of one range on one (protocol, public address) comes from:
    ``fresh``, the first port never handed out, then ``freed``, the ports given back, the
    longest free first (a port just freed may still be remembered at the far end).  Every
    port is looked at a bounded number of times, so a full range answers at once: a walk
    over the range took 2.6 ms per new connection once an address's 64k ports were in use,
    and a stream of new flows at an exhausted pool stalled the whole datapath."""

    __slots__ = ("lo", "hi", "fresh", "freed")

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi, self.fresh = lo, hi, lo
        self.freed: deque[int] = deque()

    def take(self, used: set[int], skip: frozenset[int]) -> int | None:
        hi = self.hi
        while self.fresh <= hi:
            port = self.fresh
            self.fresh += 1
            if port not in used and port not in skip:
                used.add(PORTS[port])  # (the shared object: l4.PORTS)
                return port
        freed = self.freed
        for _ in range(len(freed)):
            port = freed.popleft()
            if port in used:
                continue  # taken again since (a tenant's own port): given back again, listed again
            if port in skip:
                freed.append(PORTS[port])  # (a port forward's: not for this caller)
                continue
            used.add(PORTS[port])
            return port
        return None


class Nat:
    def __init__(self, cfg: NatConfig, epoch: Epoch) -> None:
        self.epoch = epoch
        self.snat: list[SnatRule] = list(cfg.snat)
        self.dnat: list[DnatRule] = list(cfg.dnat)
        self.one_to_one: list[OneToOne] = list(cfg.one_to_one)
        self._used: dict[tuple[int, int], set[int]] = {}
        # (protocol, address) -> (lo, hi) -> where its next free port comes from.
        self._ports: dict[tuple[int, int], dict[tuple[int, int], Ports]] = {}
        self.generation = 0
        self.exhausted = 0
        self._publics: frozenset[int] = frozenset()
        self._refresh()

    # -- rules ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._publics = frozenset(NatConfig(self.snat, self.dnat, self.one_to_one).publics())
        # What a new connection's first packet looks up, by key rather than by a walk over
        # the rules (thousands of port forwards are one probe); the first rule in order wins.
        self._forwards: dict[tuple[int, int, int], DnatRule] = {}
        for rule in self.dnat:
            self._forwards.setdefault((rule.public, rule.proto, rule.port), rule)
        # Each public address as one object, which every connection's reply tuple names (the
        # compiler boxes an int anew wherever it leaves native code: 32 bytes a connection).
        self._addresses: dict[int, Any] = {}
        for snat in self.snat:
            for a in snat.pool:
                self._addresses.setdefault(a, a)
        for one in self.one_to_one:
            self._addresses.setdefault(one.public, one.public)
        self._by_public: dict[int, OneToOne] = {}
        self._by_private: dict[int, OneToOne] = {}
        for one in self.one_to_one:
            self._by_public.setdefault(one.public, one)
            self._by_private.setdefault(one.private, one)
        self.generation += 1
        self.epoch.bump()

    @property
    def publics(self) -> frozenset[int]:
        """Public addresses the SR answers ARP for on its uplink."""
        return self._publics

    def public_list(self) -> list[str]:
        return sorted(ip_str(a) for a in self._publics)

    def add(self, rule: SnatRule | DnatRule | OneToOne) -> None:
        if any(r.name == rule.name for r in self.all_rules()):
            raise ValueError(f"a NAT rule named {rule.name!r} exists already")
        if isinstance(rule, SnatRule):
            self.snat.insert(0, rule)  # runtime rules take precedence over configured ones
        elif isinstance(rule, DnatRule):
            self.dnat.insert(0, rule)
        else:
            self.one_to_one.insert(0, rule)
        self._refresh()

    def remove(self, name: str) -> SnatRule | DnatRule | OneToOne:
        for table in (self.snat, self.dnat, self.one_to_one):
            for rule in table:
                if rule.name == name:
                    table.remove(rule)  # type: ignore[arg-type]
                    rule.active = False
                    self._refresh()
                    return rule
        raise KeyError(name)

    def all_rules(self) -> list[Any]:
        return [*self.snat, *self.dnat, *self.one_to_one]

    def rules(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.all_rules()]

    # -- decisions -------------------------------------------------------------------------
    def match_dnat(self, t: FlowTuple) -> tuple[DnatRule | OneToOne, int, int] | None:
        """For a new connection to a public address: the rule and the new destination."""
        proto, _src, _sport, dst, dport = t
        if dst not in self._publics:
            return None
        rule = self._forwards.get((dst, proto, dport))
        if rule is not None:
            return rule, rule.to, rule.to_port
        one = self._by_public.get(dst)
        if one is not None:
            return one, one.private, dport
        return None

    def address(self, ip: int) -> Any:
        """The one object of public address ``ip`` (``ip`` itself if it is none of the pools')."""
        return self._addresses.get(ip, ip)

    def choose_snat(self, t: FlowTuple) -> tuple[SnatRule | OneToOne, int, int] | str | None:
        """For a new outbound connection: the rule and the public source, EXHAUSTED, or None."""
        proto, src, sport, dst, dport = t
        one = self._by_private.get(src)
        if one is not None:
            return one, one.public, sport
        for rule in self.snat:  # (in order: each a source prefix, a handful per router)
            if rule.matches(src):
                got = self._allocate(rule, proto, sport)
                if got is None:
                    self.exhausted += 1
                    return EXHAUSTED
                return rule, got[0], got[1]
        return None

    def _allocate(self, rule: SnatRule, proto: int, want: int) -> tuple[int, int] | None:
        for ip in rule.pool:
            port = self._take(proto, ip, want, rule.port_lo, rule.port_hi)
            if port is not None:
                return ip, port
        return None

    def reserve(self, proto: int, ip: int, want: int) -> int | None:
        """A public port on ``ip`` for a related connection an ALG announced: ``want`` when it
        is free (and no port forward's), else the next free one of the range that address
        is used with (its SNAT rule's, or 1024-65535); None when there is none."""
        rule = next((r for r in self.snat if ip in r.pool), None)
        lo, hi = (rule.port_lo, rule.port_hi) if rule is not None else (1024, 65535)
        forwards = frozenset(r.port for r in self.dnat if r.public == ip and r.proto == proto)
        return self._take(proto, ip, want, lo, hi, forwards)

    def _take(self, proto: int, ip: int, want: int, lo: int, hi: int, skip: frozenset[int] = frozenset()) -> int | None:
        """A free port of ``lo``..``hi`` on ``ip``, marked used: ``want`` when it is free (port
        preservation), else the next one :class:`Ports` gives; ``skip``: never these."""
        key = (proto, ip)
        used = self._used.get(key)
        if used is None:
            used = self._used[key] = set()
        if lo <= want <= hi and want not in used and want not in skip:
            used.add(PORTS[want])
            return want
        ranges = self._ports.get(key)
        if ranges is None:
            ranges = self._ports[key] = {}
        ports = ranges.get((lo, hi))
        if ports is None:
            ports = ranges[(lo, hi)] = Ports(lo, hi)
        return ports.take(used, skip)

    def _free(self, proto: int, ip: int, port: int) -> None:
        """``port`` on ``ip`` given back: listed again where it can be handed out."""
        used = self._used.get((proto, ip))
        if used is None or port not in used:
            return
        used.discard(port)
        for ports in self._ports.get((proto, ip), {}).values():
            if ports.lo <= port <= ports.hi and port < ports.fresh:
                ports.freed.append(PORTS[port])

    def hold(self, proto: int, ip: int, port: int) -> None:
        """A public port a peer SR's session uses (replicated, ``ha/sync.py``): taken here too."""
        self._used.setdefault((proto, ip), set()).add(PORTS[port])

    def unreserve(self, proto: int, ip: int, port: int) -> None:
        self._free(proto, ip, port)

    def release_port(self, proto: int, ip: int, port: int, rule: Any) -> None:
        if isinstance(rule, SnatRule):
            self._free(proto, ip, port)

    def release(self, conn: Any) -> None:
        """Conntrack dropped ``conn``: give its public port back."""
        rule = conn.snat
        if isinstance(rule, SnatRule):
            reply = conn.reply
            self._free(reply.proto, reply.dst, reply.dport)
        if conn.held is not None:
            self.unreserve(*conn.held)

    def pool_usage(self) -> list[dict[str, Any]]:
        out = []
        for rule in self.snat:
            span = rule.port_hi - rule.port_lo + 1
            used = {proto: sum(len(self._used.get((proto, ip), ())) for ip in rule.pool) for proto in (6, 17, 1)}
            out.append(
                {
                    "rule": rule.name,
                    "addresses": [ip_str(a) for a in rule.pool],
                    "capacity_per_protocol": span * len(rule.pool),
                    "used": {"tcp": used[6], "udp": used[17], "icmp": used[1]},
                }
            )
        return out
