"""The DUT core's busy time per frame (``edgelab/corestat.py``), from /proc/stat readings."""

from __future__ import annotations

from edgelab import bench_forwarding as bf
from edgelab import corestat


def test_a_cpu_reading_has_its_eight_fields_and_a_missing_cpu_none():
    got = corestat.read(0)
    assert got is not None and len(got.ticks) == 8 and all(x >= 0 for x in got.ticks)
    assert corestat.read(100_000) is None and corestat.read(None) is None


def _reading(at, busy_ticks=0.0, idle=0.0, iowait=0.0, steal=0.0):
    """A reading ``at`` seconds; the rest in seconds of each kind, as ticks."""
    hz = corestat.HZ
    return corestat.Reading(at, tuple(round(x * hz) for x in (busy_ticks, 0, 0, idle, iowait, 0, 0, steal)))


def test_busy_time_is_the_window_less_idle_not_the_ticks_sampled():
    # Two seconds of wall clock, 0.2 s idle: 1.8 s busy over 100k frames = 18 us a frame,
    # although the ticks sampled only 1.2 s of it (the interrupt work an idle core woke for).
    before, after = _reading(100.0, 10, 90, 1), _reading(102.0, 11.2, 90.1, 1.1)
    assert corestat.per_frame(before, after, 100_000) == {"us_per_frame": 18.0, "busy": 0.9}


def test_steal_is_shown_when_the_hypervisor_took_some():
    got = corestat.per_frame(_reading(0.0), _reading(1.0, 0.8, 0, 0, 0.2), 1000)
    assert got == {"us_per_frame": 1000.0, "busy": 1.0, "steal": 0.2}


def test_nothing_to_divide_gives_nothing():
    t = _reading(5.0, 1, 1)
    assert corestat.per_frame(t, t, 1000) == {}  # no time went by
    assert corestat.per_frame(t, _reading(6.0, 2, 1), 0) == {}  # no frame
    assert corestat.per_frame(None, t, 1000) == {}  # no such CPU


def test_medians_over_trials_and_the_bench_table():
    cores = [{"us_per_frame": u, "busy": b} for u, b in ((7.0, 0.95), (9.0, 0.99), (8.0, 0.97))]
    med = corestat.median([*cores, {}])  # a trial that measured nothing does not count
    assert med == {"busy": 0.97, "us_per_frame": 8.0}
    assert corestat.cells(med, 2.0) == ("16.00", "97%")
    assert corestat.cells({}) == ("-", "-")

    def trial(core):
        one = {"max": {"delivered_pps": 1, "sent_pps": 1}, "no_loss": {"pps": 1, "core": core, "trials": []}}
        probe = {"p50_ms": 0.1, "p99_ms": 0.2, "replies": 200}
        return {"many": one, "few": one, "latency": {load: dict(probe) for load in bf.LOADS}}

    results = {"cached": bf.summarize([trial(c) for c in cores])}
    assert results["cached"]["many"]["no_loss"]["core"] == med
    line = next(x for x in bf.core_table(results).splitlines() if x.split()[:2] == ["cached", "many"])
    assert line.split()[2:] == ["8.00", "97%"]
