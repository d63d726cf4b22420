"""Expectations: poll with a deadline, compare state as subset JSON.

After FRR topotests' ``run_and_expect`` and ``json_cmp``: tests state what
they expect as a *subset* of the gateway's ``show`` output (``ANY`` matches
any value) and poll until it holds or the deadline passes; the failure says
what differed, path by path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()


def json_diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Differences where ``actual`` does not contain ``expected`` (empty list: it does).

    Dicts: every expected key must be present and match.  Lists: every
    expected item must match some actual item (order-free).
    """
    here = path or "(root)"
    if expected is ANY:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{here}: expected an object, got {actual!r}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            else:
                out += json_diff(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{here}: expected a list, got {actual!r}"]
        out = []
        for i, item in enumerate(expected):
            if not any(not json_diff(item, cand) for cand in actual):
                out.append(f"{path}[{i}]: no item matches {item!r}")
        return out
    if expected != actual:
        return [f"{here}: expected {expected!r}, got {actual!r}"]
    return []


def json_cmp(expected: Any, actual: Any) -> None:
    diff = json_diff(expected, actual)
    if diff:
        raise AssertionError("state differs from expected:\n  " + "\n  ".join(diff))


def poll(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Call ``check`` until it returns a truthy value and does not raise; return that value.

    On timeout the last exception (or a plain message) is raised with ``what``.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = None
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            if last is not None:
                raise AssertionError(f"{what} did not hold within {timeout:.1f} s: {last}") from last
            raise AssertionError(f"{what} did not hold within {timeout:.1f} s")
        time.sleep(interval)


def expect_state(show: Callable[[], Any], expected: Any, timeout: float = 5.0, what: str = "gateway state") -> Any:
    """Poll ``show()`` until it contains ``expected`` (subset JSON)."""

    def check() -> Any:
        actual = show()
        json_cmp(expected, actual)
        return actual if actual is not None else True

    return poll(check, timeout=timeout, what=what)
