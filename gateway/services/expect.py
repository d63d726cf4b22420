"""Expectations: the connections an application-level gateway has seen announced.

Where this sits: the FTP ALG (``gateway/alg/ftp.py``) reads ``PORT``/``EPRT``
(a client says where the server shall connect) and ``227``/``229`` (a server
says where the client shall connect) on a control connection.  It asks the
SR, through the datapath (:meth:`Expectations.announce`), for the endpoint
to write in their place; the SR checks the announcement, reserves a public
port when the announcer is translated, and remembers what connection it now
expects.  The first packet of a new connection (``SrServices.inbound``) that
matches an expectation — to the endpoint written, from the other end of the
control connection, nobody else — is *related*: the firewall admits it, NAT
translates it to the endpoint announced, and the expectation is used up.

One expectation per control connection (a new announcement replaces the
last; a retransmitted one gets the same answer), bounded in time
(:data:`LIFETIME`) and gone with its control connection.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.headers import IPPROTO_TCP, ip_str

LIFETIME: Final = 120.0  # s an announced connection is waited for
FIRST_PORT: Final = 1024  # announcements of a privileged port are refused (FTP bounce)


class Expectation:
    __slots__ = ("key", "peer", "to", "to_port", "master", "direction", "announced", "deadline", "held", "translates")
    active = True  # (conntrack checks a connection's NAT rule is still active: this one always is)
    name = "related"

    def __init__(self, key: tuple[int, int], peer: int, to: int, to_port: int, master: Any, direction: int) -> None:
        self.key = key  # (address, port) the other end was told
        self.peer = peer  # the address the connection must come from
        self.to, self.to_port = to, to_port  # the announcer's own endpoint
        self.translates = key != (to, to_port)
        self.master = master
        self.direction = direction
        self.announced = (to, to_port)
        self.deadline = 0.0
        self.held: tuple[int, int, int] | None = None  # a public port reserved for it

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "master": self.master.id,
            "from": ip_str(self.peer),
            "to": f"{ip_str(self.key[0])}:{self.key[1]}",
            "translated_to": f"{ip_str(self.to)}:{self.to_port}",
            "expires_in": round(self.deadline - now, 1),
        }


class Expectations:
    def __init__(self, nat: Any) -> None:
        self.nat = nat
        self._by_key: dict[tuple[int, int], Expectation] = {}
        self.counts = {"announced": 0, "matched": 0, "expired": 0, "refused": 0}

    def __len__(self) -> int:
        return len(self._by_key)

    def announce(self, conn: Any, direction: int, addr: int, port: int, now: float) -> tuple[int, int] | str:
        """``direction`` of ``conn`` announced (``addr``, ``port``; ``addr`` 0: none named, the
        sender's own): the endpoint to write instead, or the reason it is refused."""
        own = conn.orig.src if direction == 0 else conn.reply.src
        if addr == 0:
            addr = own  # the form names no address (EPSV): the sender's own
        if addr != own:
            self.counts["refused"] += 1
            return "not-senders-address"  # a pinhole for another host (FTP bounce)
        if not FIRST_PORT <= port <= 65535:
            self.counts["refused"] += 1
            return "privileged-port"
        old = conn.expect
        if old is not None and old.direction == direction and old.announced == (addr, port) and old.key in self._by_key:
            old.deadline = now + LIFETIME
            return old.key  # announced again (a retransmission): the same answer
        seen = conn.target(direction).src  # the announcer's address as the other end sees it
        peer = conn.reply.src if direction == 0 else conn.orig.src  # the other end, as it arrives
        held = None
        if seen != own:
            got = self.nat.reserve(IPPROTO_TCP, seen, port)
            if got is None:
                self.counts["refused"] += 1
                return "no-free-port"
            held = (IPPROTO_TCP, seen, got)
            key = (seen, got)
        else:
            key = (addr, port)
        if old is not None:
            self._discard(old)
        clash = self._by_key.get(key)
        if clash is not None:
            self._discard(clash)  # the same endpoint announced again on another connection
        exp = Expectation(key, peer, addr, port, conn, direction)
        exp.held, exp.deadline = held, now + LIFETIME
        self._by_key[key] = exp
        conn.expect = exp
        self.counts["announced"] += 1
        return key

    def match(self, dst: int, dport: int, src: int) -> Expectation | None:
        """The expectation a new TCP connection (``src`` -> ``dst``:``dport``) fulfils, used up."""
        exp = self._by_key.get((dst, dport))
        if exp is None or exp.peer != src or exp.master.released:
            return None
        del self._by_key[exp.key]
        if exp.master.expect is exp:
            exp.master.expect = None
        self.counts["matched"] += 1
        return exp  # its reserved port passes to the new connection (conn.held)

    def _discard(self, exp: Expectation) -> None:
        if self._by_key.get(exp.key) is exp:
            del self._by_key[exp.key]
        if exp.master.expect is exp:
            exp.master.expect = None
        if exp.held is not None:
            self.nat.unreserve(*exp.held)
            exp.held = None

    def expire(self, now: float) -> None:
        for exp in [e for e in self._by_key.values() if e.deadline < now or e.master.released]:
            self._discard(exp)
            self.counts["expired"] += 1

    def dump(self, now: float) -> list[dict[str, Any]]:
        return [e.to_dict(now) for e in self._by_key.values()]
