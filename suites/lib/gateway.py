"""Reading gateway state in tests: drop counters by name, deltas."""

from __future__ import annotations

from typing import Any


def drop_count(gw: Any, reason: str) -> int:
    """The named drop counter ('stage/reason'); 0 when it never fired."""
    return int(gw.show("drops").get(reason, 0))


def drops_delta(gw: Any, before: dict[str, int]) -> dict[str, int]:
    now = gw.show("drops")
    return {reason: int(now.get(reason, 0)) - count for reason, count in before.items()}
