"""Connection tracking for the SR: one entry per connection, NAT included.

Where this sits: the SR stage looks every routed packet up here (before
routing) and creates entries for new connections (after routing, once the
firewall allowed it and NAT chose its translation).

After Linux's nf_conntrack: an entry holds two tuples, ``orig`` (the first
packet as it arrived) and ``reply`` (what a reply looks like as *it*
arrives).  NAT is nothing more than a reply tuple that is not the plain
inverse of ``orig``: to translate a packet of one direction, make it look
like the inverse of the other direction's tuple.  SNAT, DNAT, 1:1 and hairpin
(both at once) are the same mechanism.

States: ``new`` (only the first direction seen), ``established`` (a reply
was seen), plus the TCP states that pick the timeout.  Timeouts are per
class; each class keeps its entries in last-use order, so expiry only looks
at the oldest entries.  The table has a size limit; a new connection beyond
it is refused (the caller counts ``nat-table-full``).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any, Final

from gateway.epoch import Epoch
from gateway.headers import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ip_str
from gateway.headers6 import IPPROTO_ICMPV6, addr_str
from gateway.l4 import FlowTuple, invert

ORIG: Final = 0
REPLY: Final = 1
UNTRACKED: Final = 2  # a packet the SR lets through (or not) without an entry: unrelated ICMP errors

# TCP flag bits
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

# TCP states (a compact version of RFC 9293's, as a middlebox sees them)
SYN_SENT: Final = "syn-sent"
SYN_RECV: Final = "syn-recv"
ESTABLISHED: Final = "established"
FIN_WAIT: Final = "fin-wait"  # one side sent FIN
TIME_WAIT: Final = "time-wait"  # both sides sent FIN
CLOSED: Final = "closed"  # RST seen

DEFAULT_TIMEOUTS: Final = {
    "tcp_established": 7440.0,  # RFC 5382 REQ-5: at least 2 h 4 min
    "tcp_transitory": 240.0,  # RFC 5382: 4 min for partially open or closing
    "tcp_closed": 10.0,
    "udp": 300.0,  # RFC 4787 REQ-5: at least 2 min; 5 min recommended
    "icmp": 60.0,  # RFC 5508 REQ-1
    "other": 600.0,
}


def proto_name(proto: int) -> str:
    return {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_ICMP: "icmp", IPPROTO_ICMPV6: "icmpv6"}.get(
        proto, str(proto)
    )


def tuple_str(t: FlowTuple) -> str:
    """A tuple of either family (IPv6 addresses in brackets before a port)."""
    proto, src, sport, dst, dport = t
    s, d = addr_str(src), addr_str(dst)
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        if src > 0xFFFFFFFF:
            return f"[{s}]:{sport} > [{d}]:{dport}"
        return f"{s}:{sport} > {d}:{dport}"
    if proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        return f"{s} > {d} id {sport}"
    return f"{s} > {d}"


def inverse(t: FlowTuple) -> FlowTuple:
    return FlowTuple.inverse(t)


class Conn:
    __slots__ = (
        "id",
        "orig",
        "reply",
        "state",
        "tclass",
        "created",
        "last",
        "p_orig",
        "p_reply",
        "b_orig",
        "b_reply",
        "inbound",
        "snat",
        "dnat",
        "rule",
        "fw_gen",
        "released",
        "fin",
        "alg",
        "seqadj",
        "held",
        "master",
        "expect",
        "peer",
    )

    def __init__(self, cid: int, orig: FlowTuple, reply: FlowTuple, now: float, inbound: bool) -> None:
        self.id = cid
        self.orig = orig
        self.reply = reply
        self.state = "new"
        self.tclass = "other"
        self.created = now
        self.last = now
        self.p_orig = self.p_reply = 0  # packets and bytes per direction (plain slots, not lists: memory)
        self.b_orig = self.b_reply = 0
        self.inbound = inbound  # first packet came in from the uplink
        self.snat: Any = None  # the NAT rule that chose the source translation
        self.dnat: Any = None  # the NAT rule that chose the destination translation
        self.rule: Any = None  # the firewall rule that allowed it (None: default policy)
        self.fw_gen = 0
        self.released = False
        self.fin = 0  # bit per direction that sent a FIN
        self.alg: str | None = None  # the application-level gateway (service) that reads its payload
        self.seqadj: list[Any] | None = None  # per direction: (pos, before, after) (services/seqadj.py)
        self.held: tuple[int, int, int] | None = None  # a public (proto, address, port) it holds
        self.master: Conn | None = None  # the control connection this one is related to (FTP data)
        self.expect: Any = None  # the expectation this (control) connection announced last
        self.peer: int | None = None  # installed from this peer SR's replication, not yet changed here

    @property
    def translated(self) -> bool:
        return self.reply != inverse(self.orig)

    def target(self, direction: int) -> FlowTuple:
        """What a packet of ``direction`` must look like after translation: the inverse of the
        other direction's tuple (made when asked: a million connections would hold 230 MB of
        precomputed ones)."""
        t = self.reply if direction == ORIG else self.orig
        return invert(t)

    def to_dict(self, now: float, timeouts: dict[str, float]) -> dict[str, Any]:
        return {
            "id": self.id,
            "proto": proto_name(self.orig.proto),
            "orig": tuple_str(self.orig),
            "reply": tuple_str(self.reply),
            "state": self.state,
            "direction": "inbound" if self.inbound else "outbound",
            "nat": ("snat " if self.snat else "")
            + ("dnat" if self.dnat is not None and getattr(self.dnat, "translates", True) else "")
            or None,
            **({"related_to": self.master.id} if self.master is not None else {}),
            **({"alg": self.alg} if self.alg is not None else {}),
            "age": round(now - self.created, 1),
            "expires_in": round(self.last + timeouts[self.tclass] - now, 1),
            "packets": [self.p_orig, self.p_reply],
            "bytes": [self.b_orig, self.b_reply],
            **({"replicated_from": ip_str(self.peer)} if self.peer is not None else {}),
        }


class SessionBudget:
    """The node's bound on connections, shared by every SR's table (each has its own quota too):
    one tenant router filling its quota cannot refuse the others their new connections, and
    all of them together stay within what the node can hold."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class ConnTable:
    def __init__(
        self, limit: int, epoch: Epoch, timeouts: dict[str, float] | None = None, budget: SessionBudget | None = None
    ) -> None:
        self.limit = limit
        self.epoch = epoch
        self.budget = budget if budget is not None else SessionBudget(limit)
        self.timeouts = dict(DEFAULT_TIMEOUTS, **(timeouts or {}))
        # Both tuples of every connection -> the connection (its direction: which tuple it is).
        self._by_tuple: dict[FlowTuple, Conn] = {}
        self._classes: dict[str, OrderedDict[int, Conn]] = {c: OrderedDict() for c in self.timeouts}
        self._ids = itertools.count(1)
        self._count = 0  # connections in the table (len: asked before every new one)
        self.generation = 0
        self.created = 0
        self.expired = 0
        self.on_release: Any = None  # callback(conn) when an entry goes away (frees NAT ports)
        # State replication (``ha/sync.py``): entries created or changed here, and gone, since
        # the last message to the peers; None without a peer to replicate to.
        self.changed: dict[int, Conn] | None = None
        self.gone: dict[int, Conn] | None = None

    def __len__(self) -> int:
        return self._count

    def lookup(self, t: FlowTuple) -> tuple[Conn | None, int]:
        conn = self._by_tuple.get(t)
        if conn is None:
            return None, ORIG
        return conn, ORIG if conn.orig == t else REPLY

    def taken(self, t: FlowTuple) -> bool:
        return t in self._by_tuple

    def full_reason(self) -> str | None:
        """Why a new connection cannot be added (None: it can)."""
        if len(self) >= self.limit:
            return f"this router's quota of {self.limit} connections"
        if self.budget.used >= self.budget.limit:
            return f"the node's bound of {self.budget.limit} connections"
        return None

    def full(self) -> bool:
        return self.full_reason() is not None

    def add(self, orig: FlowTuple, reply: FlowTuple, now: float, inbound: bool) -> Conn:
        conn = Conn(next(self._ids), orig, reply, now, inbound)
        conn.tclass = _initial_class(orig.proto)
        self._by_tuple[orig] = conn
        self._by_tuple[reply] = conn
        self._classes[conn.tclass][conn.id] = conn
        self._count += 1
        self.created += 1
        self.budget.used += 1
        self.generation += 1
        if self.changed is not None:
            self.changed[conn.id] = conn
        return conn

    def install(self, orig: FlowTuple, reply: FlowTuple, now: float, inbound: bool, state: str, tclass: str) -> Conn:
        """An entry a peer SR replicated: added or updated in place, never replicated back."""
        conn = self._by_tuple.get(orig)
        if conn is None or conn.orig != orig or conn.reply != reply:
            for t in (orig, reply):
                other = self._by_tuple.get(t)
                if other is not None:
                    self.remove(other, replicate=False)  # the peer's view wins: it saw the packets
            conn = Conn(next(self._ids), orig, reply, now, inbound)
            conn.tclass = tclass
            self._by_tuple[orig] = conn
            self._by_tuple[reply] = conn
            self._classes[tclass][conn.id] = conn
            self._count += 1
            self.budget.used += 1
            self.generation += 1
            self.epoch.bump()  # a cached drop of this flow (unsolicited, say) must be looked at again
        else:
            del self._classes[conn.tclass][conn.id]
            conn.tclass = tclass
            self._classes[tclass][conn.id] = conn
        conn.state = state
        conn.last = now
        return conn

    def touch(self, conn: Conn, direction: int, size: int, now: float, flags: int = 0) -> None:
        """Account a packet and advance the state; TCP ``flags`` drive the TCP states."""
        conn.last = now
        if direction:
            conn.p_reply += 1
            conn.b_reply += size
        else:
            conn.p_orig += 1
            conn.b_orig += size
        old_class, old_state = conn.tclass, conn.state
        if conn.orig.proto == IPPROTO_TCP:
            _tcp_advance(conn, direction, flags)
        elif direction == REPLY and old_state == "new":
            conn.state = "established"
        if self.changed is not None and (conn.state != old_state or conn.peer is not None):
            conn.peer = None  # forwarded here now: its changes are ours to replicate
            self.changed[conn.id] = conn
        new_class = conn.tclass
        bucket = self._classes[old_class]
        if new_class != old_class:
            del bucket[conn.id]
            self._classes[new_class][conn.id] = conn
        else:
            bucket.move_to_end(conn.id)

    def remove(self, conn: Conn, replicate: bool = True) -> None:
        if conn.released:
            return
        conn.released = True
        if self.changed is not None and replicate:
            self.changed.pop(conn.id, None)
            self.gone[conn.id] = conn  # type: ignore[index]
        self.budget.used -= 1
        self._count -= 1
        self.epoch.bump()
        self._classes[conn.tclass].pop(conn.id, None)
        for t in (conn.orig, conn.reply):
            if self._by_tuple.get(t) is conn:
                del self._by_tuple[t]
        self.generation += 1
        if self.on_release is not None:
            self.on_release(conn)

    def expire(self, now: float, limit: int | None = None) -> int:
        """Remove entries past their timeout, at most ``limit`` (None: all); how many went."""
        n = 0
        for cls, bucket in self._classes.items():
            timeout = self.timeouts[cls]
            while bucket and n != limit:
                conn = next(iter(bucket.values()))
                if now - conn.last <= timeout:
                    break
                self.remove(conn)
                n += 1
        self.expired += n
        return n

    def flush(self) -> int:
        """Every connection removed, as an expiry removes it; how many went."""
        n = 0
        for bucket in self._classes.values():
            for conn in list(bucket.values()):
                self.remove(conn)
                n += 1
        return n

    def used_since(self, since: float) -> list[Conn]:
        """Entries used at or after ``since`` (each class's newest first, where it stops)."""
        out = []
        for bucket in self._classes.values():
            for conn in reversed(bucket.values()):
                if conn.last < since:
                    break
                out.append(conn)
        return out

    def conns(self) -> list[Conn]:
        return sorted((c for b in self._classes.values() for c in b.values()), key=lambda c: c.id)

    def dump(self, now: float) -> list[dict[str, Any]]:
        return [c.to_dict(now, self.timeouts) for c in self.conns()]

    def page(self, offset: int, limit: int, keep: Any = None) -> list[Conn]:
        """Connections oldest first from the ``offset``-th (of those ``keep`` admits), at most
        ``limit``: a page costs what comes before it, never a sort of the whole table (a
        million connections took seconds to list, the datapath stalled meanwhile)."""
        return list(itertools.islice(self._each(keep), offset, offset + limit))

    def count(self, keep: Any) -> int:
        """How many connections ``keep`` admits (a walk over the table, nothing built)."""
        return sum(1 for _c in self._each(keep))

    def _each(self, keep: Any = None) -> Any:
        return (c for t, c in self._by_tuple.items() if t is c.orig and (keep is None or keep(c)))


def _initial_class(proto: int) -> str:
    if proto == IPPROTO_TCP:
        return "tcp_transitory"
    if proto == IPPROTO_UDP:
        return "udp"
    if proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        return "icmp"
    return "other"


def _tcp_advance(conn: Conn, direction: int, flags: int) -> None:
    if flags & RST:
        conn.state, conn.tclass = CLOSED, "tcp_closed"
        return
    state = conn.state
    if state == "new":
        conn.state = SYN_SENT
    elif state == SYN_SENT and direction == REPLY and flags & SYN and flags & ACK:
        conn.state = SYN_RECV
    elif state == SYN_RECV and direction == ORIG and flags & ACK:
        conn.state, conn.tclass = ESTABLISHED, "tcp_established"
    if flags & FIN:
        conn.fin |= 1 << direction
        # Both sides closed: the short timeout; one side: still transitory.
        conn.state = TIME_WAIT if conn.fin == 3 else FIN_WAIT
        conn.tclass = "tcp_transitory"
