"""Where a DUT's core goes: its time per forwarded frame, split as the kernel accounts it.

Where this sits: ``bench_forwarding.Bench.trial`` reads the DUT's core (``DUT_CPU``,
where its daemon and its receive work are steered) from ``/proc/stat`` just before
trafgen starts and just after it stops, and divides by the frames the sink received
in between.  The benches print the split at each DUT's no-loss rate: CSIT reports
clocks per packet the same way, and it says what a rate alone cannot -- whether a
DUT is short of CPU (busy near 100 %) or of something else, and whether its time
goes to its own code (user), to system calls (system) or to the kernel's receive
and transmit work (softirq).

The split is the kernel's, sampled at every tick (``USER_HZ``): over a 2 s trial
that is 200 samples, so a share is good to about 1 %.  The DUT's core also does
the sink's receive work (a veth delivers on the sender's CPU): every DUT pays it
alike.
"""

from __future__ import annotations

import os
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")


def ticks(cpu: int) -> tuple[int, ...] | None:
    """The CPU's time so far, in ticks: user, nice, system, idle, iowait, irq, softirq
    (None on a machine without that CPU: nothing was steered there)."""
    prefix = f"cpu{cpu} "
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith(prefix):
                return tuple(int(x) for x in line.split()[1:8])
    return None


def per_frame(before: tuple[int, ...] | None, after: tuple[int, ...] | None, frames: int) -> dict[str, Any]:
    """Microseconds of the core per frame between two readings, by where they went, and the
    share of the time it was busy; {} when there is nothing to divide."""
    if before is None or after is None or frames <= 0:
        return {}
    user, nice, system, idle, iowait, irq, softirq = (a - b for a, b in zip(after, before, strict=True))
    elapsed = user + nice + system + idle + iowait + irq + softirq
    if elapsed <= 0:
        return {}
    split = {"user": user + nice, "system": system, "softirq": softirq + irq}

    def us(n: int) -> float:
        return round(n / HZ / frames * 1e6, 2)

    out: dict[str, Any] = {f"{k}_us": us(v) for k, v in split.items()}
    out["total_us"] = us(sum(split.values()))
    out["busy"] = round(sum(split.values()) / elapsed, 3)
    return out


def median(cores: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over trials (those that measured one)."""
    import statistics

    cores = [c for c in cores if c]
    if not cores:
        return {}
    return {k: round(statistics.median(c[k] for c in cores), 3) for k in cores[0]}


def row(core: dict[str, Any], scale: float = 1.0) -> tuple[str, ...]:
    """user, system, softirq, total (per frame times ``scale``) and busy, as table cells."""
    if not core:
        return ("-",) * 5
    cells = tuple(f"{core[k] * scale:.2f}" for k in ("user_us", "system_us", "softirq_us", "total_us"))
    return (*cells, f"{core['busy']:.0%}")
