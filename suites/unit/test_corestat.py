"""The DUT core's time per frame (``edgelab/corestat.py``), from /proc/stat readings."""

from __future__ import annotations

from edgelab import bench_forwarding as bf
from edgelab import corestat


def test_a_cpu_reading_has_the_seven_fields_and_a_missing_cpu_none():
    got = corestat.ticks(0)
    assert got is not None and len(got) == 7 and all(x >= 0 for x in got)
    assert corestat.ticks(100_000) is None


def test_time_per_frame_split_as_the_kernel_accounts_it():
    hz = corestat.HZ
    # One second: user 0.3 (+ nice 0.1), system 0.2, softirq 0.25 + irq 0.05, idle 0.1 -> 100k frames.
    before = (1000, 10, 500, 9000, 0, 5, 400)
    d = [0.3, 0.1, 0.2, 0.1, 0.0, 0.05, 0.25]
    after = tuple(b + round(x * hz) for b, x in zip(before, d, strict=True))
    got = corestat.per_frame(before, after, 100_000)
    assert got == {"user_us": 4.0, "system_us": 2.0, "softirq_us": 3.0, "total_us": 9.0, "busy": 0.9}


def test_nothing_to_divide_gives_nothing():
    t = (1, 2, 3, 4, 5, 6, 7)
    assert corestat.per_frame(t, t, 1000) == {}  # no tick went by
    assert corestat.per_frame(t, tuple(x + 10 for x in t), 0) == {}  # no frame
    assert corestat.per_frame(None, t, 1000) == {}  # no such CPU


def test_medians_over_trials_and_the_bench_table():
    cores = [
        {"user_us": u, "system_us": 1.0, "softirq_us": 2.0, "total_us": u + 3.0, "busy": b}
        for u, b in ((3.0, 0.95), (5.0, 0.99), (4.0, 0.97))
    ]
    med = corestat.median([*cores, {}])  # a trial that measured nothing does not count
    assert med == {"user_us": 4.0, "system_us": 1.0, "softirq_us": 2.0, "total_us": 7.0, "busy": 0.97}
    assert corestat.row(med, 2.0) == ("8.00", "2.00", "4.00", "14.00", "97%")
    assert corestat.row({}) == ("-",) * 5

    def trial(core):
        one = {"max": {"delivered_pps": 1, "sent_pps": 1}, "no_loss": {"pps": 1, "core": core, "trials": []}}
        probe = {"p50_ms": 0.1, "p99_ms": 0.2, "replies": 200}
        return {"many": one, "few": one, "latency": {load: dict(probe) for load in bf.LOADS}}

    results = {"cached": bf.summarize([trial(c) for c in cores])}
    assert results["cached"]["many"]["no_loss"]["core"] == med
    line = next(x for x in bf.core_table(results).splitlines() if x.split()[:2] == ["cached", "many"])
    assert line.split()[2:] == ["4.00", "1.00", "2.00", "7.00", "97%"]
