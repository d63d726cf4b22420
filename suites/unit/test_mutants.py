"""The seeded-fault catalogue and the runner's reading of suite results."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgelab import mutants
from edgelab.faults import FAULTS, Fault


def test_every_fault_applies_to_the_tree_once_and_changes_it() -> None:
    assert mutants.check_catalogue() == []
    assert len(FAULTS) >= 30
    assert len({f.name for f in FAULTS}) == len(FAULTS)


def test_the_catalogue_covers_every_part_of_the_gateway() -> None:
    touched = {f.path.split("/")[1] for f in FAULTS}
    for part in ("stages", "tables", "services", "cache", "ha", "relay", "alg"):
        assert part in touched, part


def test_a_fault_whose_text_is_gone_is_refused() -> None:
    fault = Fault("x", "gateway/l3.py", "no such text", "y", "nothing")
    with pytest.raises(mutants.MutantsError, match="occurs 0 times"):
        mutants.apply("some text", fault)
    twice = Fault("x", "gateway/l3.py", "a", "b", "nothing")
    with pytest.raises(mutants.MutantsError, match="occurs 2 times"):
        mutants.apply("a a", twice)


def test_the_fault_named_suites_run_first() -> None:
    paths = [Path("suites/robot/cache.robot"), Path("suites/robot/nat.robot"), Path("suites/e2e/test_nat.py")]
    assert [p.name for p in mutants.ordered(paths, ("nat",))] == ["nat.robot", "test_nat.py", "cache.robot"]


def test_robot_failures_skip_the_tests_stopped_by_exit_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "output.xml"
    out.write_text(
        "<robot><suite><test name='A'><status status='PASS'/></test>"
        "<test name='B'><status status='FAIL'>Test execution stopped due to a fatal error.</status></test>"
        "<test name='C'><status status='FAIL'>ping failed: 3 sent, 0 received</status></test></suite></robot>"
    )
    assert mutants.robot_failure(out) == ("C", "ping failed: 3 sent, 0 received")
    out.write_text("<robot><suite><test name='A'><status status='PASS'/></test></suite></robot>")
    assert mutants.robot_failure(out) is None


def test_junit_failures_and_errors_count(tmp_path: Path) -> None:
    out = tmp_path / "e2e.xml"
    out.write_text(
        "<testsuites><testsuite><testcase classname='suites.e2e.test_nat' name='test_a'/>"
        "<testcase classname='suites.e2e.test_nat' name='test_b'><error message='setup broke'/></testcase>"
        "</testsuite></testsuites>"
    )
    assert mutants.junit_failure(out) == ("test_nat::test_b", "setup broke")


def test_the_summary_counts_each_part_of_the_suites() -> None:
    outcomes = [
        mutants.Outcome("a", stage="neutral"),
        mutants.Outcome("b", stage="internals"),
        mutants.Outcome("c", stage="e2e"),
        mutants.Outcome("d"),
    ]
    s = mutants.summary(outcomes)
    assert (s["caught_neutral"], s["caught_robot"], s["caught_black_box"]) == (1, 2, 3)
    assert s["caught_black_box_pct"] == 75.0
    assert s["escapes"] == ["d"]


def test_a_copy_of_a_revision_holds_its_files(tmp_path: Path) -> None:
    mutants.copy_tree(tmp_path / "t", "HEAD")
    assert (tmp_path / "t" / "gateway" / "stages" / "routing.py").exists()
    with pytest.raises(mutants.MutantsError, match="no revision"):
        mutants.copy_tree(tmp_path / "u", "no-such-rev-xyz")
