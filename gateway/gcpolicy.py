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
``young_garbage`` (or not make it).  :func:`cycles` looks for such cycles on request (the
``gc`` control command) and at the daemon's stop; the end-to-end suites ask every reference
gateway for it before they stop it, and fail if it found any.
"""

from __future__ import annotations

import gc
import ipaddress
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

Net = TypeVar(
    "Net", bound=ipaddress.IPv4Network | ipaddress.IPv6Network | ipaddress.IPv4Interface | ipaddress.IPv6Interface
)


def reference_counting_only() -> None:
    """Automatic collection off; what exists now (configuration, model) frozen out of reach,
    after one full collection of what the start left (an import's discarded classes: pyroute2's
    decoder leaves some), which freezing would otherwise keep."""
    gc.collect()
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


def acyclic(net: Net) -> Net:
    """``net`` (a network, or an interface's network) without the reference cycle ``ipaddress``
    gives a /31 or /127: ``self.hosts = self.__iter__``, a bound method of itself, so reference
    counting never frees it.  Without the attribute the class's ``hosts()`` answers (empty for
    a /31; the gateway lists a /31's two addresses by iterating it).  Every prefix the daemon
    parses goes through here: the config's, and the control socket's."""
    network = net.network if isinstance(net, ipaddress.IPv4Interface | ipaddress.IPv6Interface) else net
    vars(network).pop("hosts", None)
    return net


def cycles(free: bool = True) -> dict[str, Any]:
    """A full collection, now: the objects it found unreachable, in reference cycles, by type.

    With automatic collection off, each was memory the daemon held for nothing since it was
    dropped: a cycle made outside :func:`young_garbage`, a bug.  It walks every object made
    since the start, twice (the second frees what the first named): 10-20 ms on
    ``edge-basic``, 1.35 s with a million sessions (3 million objects), so it runs only when
    asked: the ``gc`` control command, and once at the daemon's stop (its log says what it
    found), there without the second walk (``free=False``: the process ends)."""
    t0 = time.perf_counter()
    gc.unfreeze()  # (what the start froze is looked at too: some of it may have been dropped since)
    flags = gc.get_debug()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)  # what it finds kept in gc.garbage, to be named
    try:
        found = gc.collect()
        kinds = Counter(_kind(o) for o in gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
    if free:
        gc.collect()  # (then freed)
    return {
        "unreachable": found,
        "kinds": dict(kinds.most_common(10)),
        "ms": round((time.perf_counter() - t0) * 1e3, 1),
    }


def _kind(obj: object) -> str:
    """A found object's type; a class found is named (one made at run time is the usual culprit)."""
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    return type(obj).__name__
