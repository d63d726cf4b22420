"""How long the run-to-completion loop went without looking at its ports.

Where this sits: :func:`gateway.loop.run` times each round of
its loop (from epoll's return to the last flush) and hands this meter every
round longer than :data:`FLOOR`; ``show counters`` reports it as ``loop``.
A long round delays every frame behind it, BFD's included: a round of 150 ms
is a failover at 50 ms x 3.  (The model is ``dpif-netdev/pmd-perf-show``'s
iteration histogram, cut down to what a stall hunt needs.)
"""

from __future__ import annotations

from typing import Any

FLOOR = 0.005  # rounds shorter than this are not noted (one comparison a round)
BOUNDS_MS = (10, 50, 100)


class Stalls:
    __slots__ = ("worst", "over", "last", "last_at")

    def __init__(self) -> None:
        self.worst = 0.0
        self.over = [0] * len(BOUNDS_MS)
        self.last = 0.0
        self.last_at = 0.0

    def note(self, seconds: float, now: float) -> None:
        """A round of ``seconds`` (at least :data:`FLOOR`) ended at ``now`` (monotonic)."""
        ms = seconds * 1000.0
        for i, bound in enumerate(BOUNDS_MS):
            if ms >= bound:
                self.over[i] += 1
        if seconds > self.worst:
            self.worst = seconds
        self.last, self.last_at = seconds, now

    def counters(self, now: float) -> dict[str, Any]:
        return {
            "max_round_ms": round(self.worst * 1000.0, 1),
            **{f"rounds_over_{b}ms": n for b, n in zip(BOUNDS_MS, self.over, strict=True)},
            "last_long_round_ms": round(self.last * 1000.0, 1),
            "last_long_round_s_ago": round(now - self.last_at, 1) if self.last_at else None,
        }
