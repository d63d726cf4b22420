"""What an SR knows of one peer's replication stream (``sync.py``): which life of the
peer it is (``boot``), the next seq it expects, the messages that came early, counters."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from gateway.ha.syncwire import UPDATE


@dataclass
class Peer:
    transit: int
    sources: frozenset[int]  # addresses it may send from (its transit address, its others)
    boot: int | None = None
    old_boots: deque[int] = field(default_factory=lambda: deque(maxlen=8))
    candidate: int | None = None  # a new boot seen once, not yet believed
    expected: int = 1
    stash: dict[int, tuple[int, bytes, int]] = field(default_factory=dict)
    synced: bool = False
    asked_at: float = -1e9  # last RESYNC sent
    nacked_at: float = -1e9
    mac: bytes | None = None
    heard: float | None = None
    messages: int = 0
    records: int = 0
    applied: int = 0
    resyncs: int = 0
    nacks_sent: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def believe(self, boot: int, kind: int, seq: int) -> str | None:
        """Take in a message's ``boot``: None when it is the life we know (or a new one, now
        believed: ``expected`` starts over), else why the message is refused."""
        if boot == self.boot:
            self.candidate = None  # the life we know goes on
            return None
        if boot in self.old_boots:
            return "replayed"
        if self.boot is not None and boot != self.candidate:
            # A new life of the peer is believed from its second message on: one message (a
            # forgery, say) must not make every later one of the real peer a replay.
            self.candidate = boot
            return "unconfirmed-boot"
        self.candidate = None
        if self.boot is not None:
            # The peer restarted: its new life starts at 1 (it asks us for everything).
            self.old_boots.append(self.boot)
            self.expected = 1
        else:
            # First words from it since we started: what came before, our RESYNC brings.
            # (Every kind carries the sender's seq: its last UPDATE's, or this UPDATE's.)
            self.expected = max(seq, 1) if kind == UPDATE else seq + 1
        self.boot = boot
        self.stash.clear()
        return None

    def show(self, now: float) -> dict[str, Any]:
        return {
            "boot": f"{self.boot:08x}" if self.boot is not None else None,
            "expected_seq": self.expected,
            "synced": self.synced,
            "heard_ago": round(now - self.heard, 1) if self.heard is not None else None,
            **{k: getattr(self, k) for k in ("messages", "records", "applied", "resyncs", "nacks_sent")},
            "waiting": len(self.stash),
            "refused": dict(self.refused),
        }
