"""The conformance report (ci/report.py): statuses, n/a, the comparison table, known findings."""

from __future__ import annotations

from pathlib import Path

import pytest

import topologies
from ci import report
from suites.duts.base import DutDriver

SUITE = """*** Test Cases ***
Same Everywhere
    [Tags]    needs:switching
    Log    ok
Differs
    [Tags]    needs:switching
    Should Be Equal    ${DUT}    reference
Needs Nat
    [Tags]    needs:nat.snat
    Log    ok
"""


class SwitchOnly(DutDriver):
    name = "switch-only-report"
    capabilities = frozenset({"switching"})


def run_as(tmp_path: Path, dut: str) -> Path:
    from robot import run

    topologies.register_dut(SwitchOnly.name, SwitchOnly)
    suite = tmp_path / "Demo.robot"
    suite.write_text(SUITE)
    out = tmp_path / dut
    run(
        str(suite),
        outputdir=str(out),
        variable=[f"DUT:{dut}"],
        metadata=[f"DUT:{dut}"],
        prerunmodifier=f"suites.lib.applicable.NotApplicable:{dut}",
        report="NONE",
        log="NONE",
        console="none",
    )
    return out / "output.xml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    return run_as(tmp, "reference"), run_as(tmp, SwitchOnly.name)


def test_statuses_and_na(runs):
    ref, other = (report.robot_results(p) for p in runs)
    assert [t["status"] for t in ref["tests"]] == ["PASS", "PASS", "PASS"]
    assert [t["status"] for t in other["tests"]] == ["PASS", "FAIL", "n/a"]
    assert other["tests"][2]["message"].startswith("n/a: DUT switch-only-report lacks nat.snat")


def test_comparison_puts_differences_first(runs, tmp_path, capsys):
    assert report.main([str(p) for p in runs] + ["--write", str(tmp_path)]) == 1, "a test failed somewhere"
    table = (tmp_path / "summary.md").read_text().splitlines()
    rows = [line for line in table if line.startswith("| Demo")]
    assert [r.split("|")[2].strip() for r in rows] == ["Differs", "Needs Nat", "Same Everywhere"]
    assert "switch-only-report: 1 passed, 1 failed, 1 n/a, 0 skipped" in (tmp_path / "summary.md").read_text()


def test_known_findings(runs, tmp_path):
    other = runs[1]
    exact = tmp_path / "exact.txt"
    exact.write_text("# why it fails\nDemo.Differs\n")
    assert report.main([str(other), "--expect", str(exact)]) == 0
    stale = tmp_path / "stale.txt"
    stale.write_text("Demo.Differs\nDemo.Same Everywhere\n")
    assert report.main([str(other), "--expect", str(stale)]) == 1, "a listed finding that passes is reported"
    none = tmp_path / "none.txt"
    none.write_text("")
    assert report.main([str(other), "--expect", str(none)]) == 1, "a failure not listed is reported"


def test_missing_output_is_an_error(tmp_path):
    assert report.main([str(tmp_path / "nope.xml")]) == 2
