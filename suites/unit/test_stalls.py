"""The loop's stall meter: rounds long enough to delay BFD, counted by size."""

from __future__ import annotations

from gateway.stalls import Stalls


def test_long_rounds_are_counted_by_size_and_the_worst_kept():
    s = Stalls()
    s.note(0.012, 100.0)
    s.note(0.160, 101.0)
    s.note(0.060, 102.0)
    c = s.counters(104.5)
    assert c["max_round_ms"] == 160.0
    assert (c["rounds_over_10ms"], c["rounds_over_50ms"], c["rounds_over_100ms"]) == (3, 2, 1)
    assert c["last_long_round_ms"] == 60.0
    assert c["last_long_round_s_ago"] == 2.5


def test_a_quiet_loop_reports_no_long_round():
    c = Stalls().counters(5.0)
    assert c["max_round_ms"] == 0.0 and c["rounds_over_10ms"] == 0
    assert c["last_long_round_s_ago"] is None
