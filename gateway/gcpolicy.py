"""The daemon's garbage collection: reference counting, and the young generations alone.

Where this sits: ``python -m gateway`` calls :func:`collect_young_only` before the loop
starts; code that builds and drops a cyclic structure (a reload's side model, a parsed
FPM message) runs under :func:`young_garbage`.

Why: a full collection walks every object the daemon holds.  With 60k connections in
the tables (about a million objects) it took 200 ms, and it grows with them; a growing
table set one off at each quarter of growth (in process, 15-20 % of a new connection's
cost at 40k connections).  The tables' own state (connections, cache entries, routes)
is freed by reference counting when it goes: the datapath makes no cyclic garbage per
packet or connection (``suites/unit/test_gc.py`` checks that).  A cycle that dies young
is still collected; one that had been promoted to the old generation would stay, so
what builds cycles does so under :func:`young_garbage`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

NEVER = 2**31 - 1  # the old generation's threshold: never reached


def collect_young_only() -> None:
    """What exists now (configuration, model, tables) is frozen out of every scan; the
    young generations are collected as usual, the old one never."""
    gc.freeze()
    gc.set_threshold(700, 10, NEVER)


@contextmanager
def young_garbage() -> Iterator[None]:
    """Run the block with no automatic collection, then collect the youngest generation:
    what the block made and dropped, cycles included, never reached an older one."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect(0)
