"""Where a DUT's core goes: its busy time per forwarded frame.

Where this sits: ``offered.Offered.trial`` reads the DUT's core (``DUT_CPU``,
where its daemon and its receive work are steered) just before trafgen starts and
just after it stops, and divides the core's busy time by the frames the sink
received in between.  The benches print it at each DUT's no-loss rate, as CSIT
reports clocks per packet: it says what a rate alone cannot -- what a frame
costs the DUT, its own work and the kernel's on its behalf together, and
whether the DUT was short of CPU (busy near 100 %) or of something else.

How it is measured: the window is the wall clock's, and the busy time is the
window less the core's idle time, which a tickless kernel (``NO_HZ``) measures
exactly.  Two other readings were tried and left:

- the sum of the kernel's tick samples (``/proc/stat``'s busy fields) misses the
  interrupt work an idle core is woken for (the tick does not run then): at
  90 kpps through the reference the samples held 0.9-1.4 s of a 2.0 s window
  that was 0.3 s idle;
- their split into user, system and softirq follows the tick (250/s here), which
  falls in step with the DUT's own 1 ms timers: four trials of the reference at
  110 kpps gave 0.04 us of user time a frame, four others 3.5.

A DUT's time per frame falls as its rate rises (what each round of its loop,
each wake-up and each interrupt costs is shared by more frames: the reference
cached 10 us at 90 kpps, 8.3 at 120), so DUTs are compared at their own
no-loss rates, as the table does.  The DUT's core also does the sink's receive
work (a veth delivers on the sender's CPU): every DUT pays it alike.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, NamedTuple

HZ = os.sysconf("SC_CLK_TCK")
IDLE, IOWAIT, STEAL = 3, 4, 7  # fields of a /proc/stat cpu line, after its name


class Reading(NamedTuple):
    at: float  # time.monotonic()
    ticks: tuple[int, ...]  # user, nice, system, idle, iowait, irq, softirq, steal


def read(cpu: int | None) -> Reading | None:
    """The CPU's time so far, and when it was read (None for no CPU, or one this machine lacks:
    nothing was steered there)."""
    if cpu is None:
        return None
    prefix = f"cpu{cpu} "
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith(prefix):
                fields = [int(x) for x in line.split()[1:9]]
                return Reading(time.monotonic(), tuple(fields + [0] * (8 - len(fields))))
    return None


def per_frame(before: Reading | None, after: Reading | None, frames: int) -> dict[str, Any]:
    """The core's busy microseconds per frame between two readings, and the share of the
    window it was busy; {} when there is nothing to divide."""
    if before is None or after is None or frames <= 0:
        return {}
    wall = after.at - before.at
    if wall <= 0:
        return {}
    idle = (after.ticks[IDLE] - before.ticks[IDLE] + after.ticks[IOWAIT] - before.ticks[IOWAIT]) / HZ
    busy = min(wall, max(0.0, wall - idle))
    out: dict[str, Any] = {"us_per_frame": round(busy / frames * 1e6, 2), "busy": round(busy / wall, 3)}
    steal = (after.ticks[STEAL] - before.ticks[STEAL]) / HZ
    if steal > 0:
        out["steal"] = round(steal / wall, 3)  # of the window, the hypervisor's (counted busy)
    return out


def median(cores: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the trials that measured it."""
    cores = [c for c in cores if c]
    keys = sorted({k for c in cores for k in c})
    return {k: round(statistics.median(c[k] for c in cores if k in c), 3) for k in keys}


def cells(core: dict[str, Any], scale: float = 1.0) -> tuple[str, str]:
    """Microseconds per frame (times ``scale``: per connection, two frames) and busy, as table cells."""
    if not core:
        return ("-", "-")
    return (f"{core['us_per_frame'] * scale:.2f}", f"{core['busy']:.0%}")
