"""ARP (neighbour) table of one router, with the queue of packets waiting for
a resolution.

Where this sits: the ``dr`` and ``sr`` stages look up next hops here; their
ARP input learns into it; the datapath's timer retries pending resolutions and
expires old entries.  Entries are keyed by (router port, IPv4 address).

The queue is bounded per next hop (``tables.arp_queue``): a packet that finds
it full is dropped and counted (``arp-queue-full``).  A resolution that gets no
answer after ``tables.arp_retries`` requests one second apart gives up; its
queued packets are handed back to the router to drop (``arp-unresolved``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from gateway.cache import EPOCH
from gateway.headers import ip_str, mac_str

if TYPE_CHECKING:
    from gateway.model import RouterPort
    from gateway.packet import Packet

RETRY_INTERVAL = 1.0


class ArpEntry:
    """One resolved neighbour; replaced (``valid`` False) when its MAC changes."""

    __slots__ = ("mac", "updated", "valid")

    def __init__(self, mac: bytes, updated: float) -> None:
        self.mac = mac
        self.updated = updated
        self.valid = True


class Pending:
    __slots__ = ("queue", "tries", "next_try")

    def __init__(self, limit: int, now: float) -> None:
        self.queue: deque[Packet] = deque(maxlen=limit)
        self.tries = 1
        self.next_try = now + RETRY_INTERVAL


class ArpTable:
    def __init__(self, timeout: float, queue_limit: int, retries: int) -> None:
        self.timeout = timeout
        self.queue_limit = queue_limit
        self.retries = retries
        self._entries: dict[tuple[RouterPort, int], ArpEntry] = {}
        self.pending: dict[tuple[RouterPort, int], Pending] = {}
        self.generation = 0

    def lookup(self, port: RouterPort, ip: int) -> bytes | None:
        entry = self._entries.get((port, ip))
        return entry.mac if entry is not None else None

    def entry(self, port: RouterPort, ip: int) -> ArpEntry | None:
        return self._entries.get((port, ip))

    def learn(self, port: RouterPort, ip: int, mac: bytes, now: float) -> list[Packet]:
        """Record ip -> mac; return the packets that were waiting for it."""
        key = (port, ip)
        entry = self._entries.get(key)
        if entry is None or entry.mac != mac:
            if entry is not None:
                entry.valid = False
            self._entries[key] = ArpEntry(mac, now)
            self.generation += 1
            EPOCH.bump()
        else:
            entry.updated = now
        pending = self.pending.pop(key, None)
        return list(pending.queue) if pending else []

    def refresh(self, port: RouterPort, ip: int, mac: bytes, now: float) -> list[Packet]:
        """Update an entry only if it exists (RFC 826 merge for ARP not aimed at us)."""
        if (port, ip) in self._entries or (port, ip) in self.pending:
            return self.learn(port, ip, mac, now)
        return []

    def enqueue(self, port: RouterPort, ip: int, pkt: Packet, now: float) -> tuple[bool, bool]:
        """Queue ``pkt`` behind a resolution of ``ip``.

        Returns (queued, new_resolution): new_resolution tells the caller to
        send the first ARP request; queued False means the queue was full.
        """
        key = (port, ip)
        pending = self.pending.get(key)
        if pending is None:
            pending = self.pending[key] = Pending(self.queue_limit, now)
            pending.queue.append(pkt)
            return True, True
        if len(pending.queue) >= self.queue_limit:
            return False, False
        pending.queue.append(pkt)
        return True, False

    def due(self, now: float) -> tuple[list[tuple[RouterPort, int]], list[Packet]]:
        """Resolutions to retry now, and packets whose resolution gave up."""
        retry: list[tuple[RouterPort, int]] = []
        failed: list[Packet] = []
        for key, pending in list(self.pending.items()):
            if now < pending.next_try:
                continue
            if pending.tries >= self.retries:
                failed.extend(pending.queue)
                del self.pending[key]
                continue
            pending.tries += 1
            pending.next_try = now + RETRY_INTERVAL
            retry.append(key)
        return retry, failed

    def expire(self, now: float) -> int:
        stale = [k for k, e in self._entries.items() if now - e.updated > self.timeout]
        for key in stale:
            self._entries.pop(key).valid = False
        if stale:
            self.generation += 1
            EPOCH.bump()
        return len(stale)

    def flush(self) -> None:
        for entry in self._entries.values():
            entry.valid = False
        self._entries.clear()
        self.generation += 1
        EPOCH.bump()

    def dump(self, now: float) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {
                "port": port.label,
                "ip": ip_str(ip),
                "mac": mac_str(e.mac),
                "age": round(now - e.updated, 1),
                "state": "reachable",
            }
            for (port, ip), e in self._entries.items()
        ]
        rows += [
            {"port": port.label, "ip": ip_str(ip), "mac": None, "queued": len(p.queue), "state": "incomplete"}
            for (port, ip), p in self.pending.items()
        ]
        return sorted(rows, key=lambda r: (r["port"], r["ip"]))
