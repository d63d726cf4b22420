"""Packets of no known connection, held a moment for the peers' replication.

Where this sits: in the datapath process, owned by ``sync.StateSync``.  The
``sr`` stage hands over a packet its services refused for want of a
connection before anything rewrote it (``stages/sr.py``, ``WAIT_FOR_PEER``:
``nat-no-session``, ``ct-invalid``) on an SR that replicates: with
active/active SRs a reply may come back through the SR that did not see its
connection open, a moment before the peer's message about it arrives.

A held packet waits at most :data:`HOLD_FOR`; whenever a peer's message
installed an entry, every held packet runs again from the start (``rerun``:
the datapath's ``process``).  One refused again waits on until its time is up;
then it runs once more and is dropped and counted as it would have been at
first.  At most :data:`HOLD_MAX` wait; beyond that a packet is dropped at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

HOLD_FOR = 0.05
HOLD_MAX = 256


class WaitForPeers:
    def __init__(self, routers: set[str], rerun: Callable[..., Any]) -> None:
        self.routers = routers
        self.rerun = rerun
        self.held: deque[tuple[float, Any, Any, bytearray]] = deque()
        self.deadline: float | None = None  # the held packet running again: its deadline
        self.final = False  # ... and its time is up: not held again
        self.holds = self.released = self.expired = self.refused = 0

    def hold(self, meta: dict[str, Any], frame: bytes, now: float) -> bool:
        """Keep a packet its SR had no connection for (False: drop it now)."""
        if meta.get("router") not in self.routers:
            return False
        again = self.deadline is not None
        if self.final or len(self.held) >= HOLD_MAX:
            if not again:
                self.refused += 1
            return False
        deadline = self.deadline if self.deadline is not None else now + HOLD_FOR
        self.held.append((deadline, meta["port"], meta["vlan"], bytearray(frame)))
        if not again:
            self.holds += 1
        return True

    def replay(self, now: float, installed: Callable[[], bool]) -> None:
        """Run the held packets again when a peer's message installed something (``installed``
        asks, and forgets), or when the first one's time is up."""
        if not self.held or not (installed() or self.held[0][0] <= now):
            return
        batch, self.held = self.held, deque()
        for deadline, port, vlan, frame in batch:
            self.deadline, self.final = deadline, deadline <= now
            try:
                before = len(self.held)
                pkt = self.rerun(port, [(frame, vlan)], now)
                if len(self.held) == before:
                    if pkt is not None and pkt.drop_reason is not None:
                        self.expired += 1
                    else:
                        self.released += 1
            finally:
                self.deadline, self.final = None, False

    def wait(self, now: float) -> float | None:
        """Seconds until the first held packet's time is up (None: none is held)."""
        return max(0.0, self.held[0][0] - now) if self.held else None

    def show(self) -> dict[str, int]:
        return {
            "held": self.holds,
            "released": self.released,
            "dropped": self.expired,
            "not_held": self.refused,
            "waiting": len(self.held),
        }
