"""ARP (neighbour) table of one router, with the queue of packets waiting for
a resolution.

Where this sits: the ``dr`` and ``sr`` stages look up next hops here; their
ARP input learns into it; the datapath's timer retries pending resolutions and
expires old entries.  Entries are keyed by (router port, IPv4 address).

The queue is bounded per next hop (``tables.arp_queue``): a packet that finds
it full is dropped and counted (``arp-queue-full``).  A resolution that gets no
answer after ``tables.arp_retries`` requests one second apart gives up; its
queued packets are handed back to the router to drop (``arp-unresolved``).
Aging, replacement and flush are ``aging.py``'s.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from gateway.epoch import Epoch
from gateway.headers import ip_str, mac_str
from gateway.headers6 import ip6_str
from gateway.tables.aging import AgingEntry, AgingTable

RETRY_INTERVAL: Final = 1.0


# A model.RouterPort: not imported, the tables sit below the model (an entry shows its ``label``).
RouterPort = Any


class ArpEntry(AgingEntry):
    """One resolved neighbour; replaced (``valid`` False) when its MAC changes."""

    __slots__ = ("mac",)

    def __init__(self, mac: bytes, seen: float) -> None:
        super().__init__(seen)
        self.mac = mac


class Pending:
    __slots__ = ("queue", "tries", "next_try")

    def __init__(self, limit: int, now: float) -> None:
        self.queue: deque[Any] = deque(maxlen=limit)  # packets (``packet.Packet``) waiting
        self.tries = 1
        self.next_try = now + RETRY_INTERVAL


class ArpTable(AgingTable[tuple[RouterPort, int], ArpEntry]):
    def __init__(self, timeout: float, queue_limit: int, retries: int, epoch: Epoch, bits: int = 32) -> None:
        super().__init__(timeout, epoch)
        # 128: the IPv6 neighbour table (ND), the same mechanism keyed by 128-bit addresses.
        self.text = ip_str if bits == 32 else ip6_str
        self.queue_limit = queue_limit
        self.retries = retries
        self.pending: dict[tuple[RouterPort, int], Pending] = {}

    def lookup(self, port: RouterPort, ip: int) -> bytes | None:
        entry = self._entries.get((port, ip))
        return entry.mac if entry is not None else None

    def entry(self, port: RouterPort, ip: int) -> ArpEntry | None:
        return self._entries.get((port, ip))

    def learn(self, port: RouterPort, ip: int, mac: bytes, now: float) -> list[Any]:
        """Record ip -> mac; return the packets that were waiting for it."""
        key = (port, ip)
        entry = self._entries.get(key)
        if entry is None or entry.mac != mac:
            self._replace(key, ArpEntry(mac, now))
        else:
            entry.seen = now
        pending = self.pending.pop(key, None)
        return list(pending.queue) if pending else []

    def refresh(self, port: RouterPort, ip: int, mac: bytes, now: float) -> list[Any]:
        """Update an entry only if it exists (RFC 826 merge for ARP not aimed at us)."""
        if (port, ip) in self._entries or (port, ip) in self.pending:
            return self.learn(port, ip, mac, now)
        return []

    def enqueue(self, port: RouterPort, ip: int, pkt: Any, now: float) -> tuple[bool, bool]:
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

    def due(self, now: float) -> tuple[list[tuple[RouterPort, int]], list[Any]]:
        """Resolutions to retry now, and packets whose resolution gave up."""
        retry: list[tuple[RouterPort, int]] = []
        failed: list[Any] = []
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

    def dump(self, now: float) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {
                "port": port.label,
                "ip": self.text(ip),
                "mac": mac_str(e.mac),
                "age": round(now - e.seen, 1),
                "state": "reachable",
            }
            for (port, ip), e in self._entries.items()
        ]
        rows += [
            {"port": port.label, "ip": self.text(ip), "mac": None, "queued": len(p.queue), "state": "incomplete"}
            for (port, ip), p in self.pending.items()
        ]
        return sorted(rows, key=lambda r: (r["port"], r["ip"]))
