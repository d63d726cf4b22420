"""Reading gateway state in tests: drop counters by name, deltas, leaked memory."""

from __future__ import annotations

from typing import Any


def drop_count(gw: Any, reason: str) -> int:
    """The named drop counter ('stage/reason'); 0 when it never fired."""
    return int(gw.show("drops").get(reason, 0))


def drops_delta(gw: Any, before: dict[str, int]) -> dict[str, int]:
    now = gw.show("drops")
    return {reason: int(now.get(reason, 0)) - count for reason, count in before.items()}


def leaked(lab: Any) -> dict[str, Any]:
    """What each gateway of ``lab`` still running holds for nothing (``GatewayHandle.leaks``),
    by gateway, where it found any.  The reference gateway's daemon runs without automatic
    garbage collection: an object it left in a reference cycle is never freed."""
    found = {}
    for name in lab.plan.get("gateways", {}):
        try:
            handle = lab.gateway(name)
        except Exception:  # noqa: BLE001 - stopped by a test: nothing to ask
            continue
        if not handle.alive():
            continue
        report = handle.leaks()
        if report is not None and report["unreachable"]:
            found[name] = report
    return found
