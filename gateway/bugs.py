"""Internal errors: a bug costs one request, message or packet, never the daemon.

Callers count every one; the first few print their traceback to stderr so a
long run does not drown its log in the same stack.
"""

from __future__ import annotations

import sys
import traceback

REPORTED = 5  # internal errors printed with their traceback; all are counted


def report_bug(count: int, what: str) -> None:
    """Print the current exception's traceback if this is among the first REPORTED."""
    if count <= REPORTED:
        print(f"gateway: internal error {what}:", file=sys.stderr)
        traceback.print_exc()
