"""The daemon's garbage collection: reference counting, and a young collection only around
code known to build cycles.

Where this sits: ``python -m gateway`` calls :func:`reference_counting_only` before the
loop starts; code that builds and drops a cyclic structure (a reload's side model, a parsed
FPM message) runs under :func:`young_garbage`.

Why: the tables' own state (connections, cache entries, routes) is freed by reference
counting when it goes: the datapath makes no cyclic garbage per packet or connection
(``suites/unit/test_gc.py`` checks that, with automatic collection off).  Automatic
collection only cost time, and unbounded time:

- a full collection walks every object the daemon holds (with 60k connections, about a
  million objects, 200 ms), so the old generation was never collected;
- a young one was to be small, but CPython counts allocations *less deallocations* of
  every age: under a steady load, as many old connections expiring as new ones opening,
  the count stayed near zero while the young generation grew to a million objects, and
  when the load changed a young collection walked them all, then the middle one again:
  rounds of the loop of 180-220 and 260-320 ms, two at every change of rate (``bench
  connections`` at 40-45k connections/s; found with a collection callback in the loop).

So collection is off.  A block under :func:`young_garbage` first moves every object that
exists out of the young generations (``gc.freeze``: a splice of lists, not a walk), so its
collection walks what the block made alone, then puts them back in the oldest generation.
A cycle made anywhere else is never collected: code that makes one must run under
``young_garbage`` (or not make it).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def reference_counting_only() -> None:
    """Automatic collection off; what exists now (configuration, model) frozen out of reach."""
    gc.freeze()
    gc.disable()


@contextmanager
def young_garbage() -> Iterator[None]:
    """Run the block, then collect what it made and dropped, cycles included, walking the
    block's objects alone (what existed before is frozen through it, then back in the oldest
    generation: two splices)."""
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.collect(0)
        gc.unfreeze()
        if enabled:
            gc.enable()
