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


# -- the comparison page, in a real browser --------------------------------------------------
def _bench(tmp: Path) -> None:
    one = {"max": {"delivered_pps": 150000.0, "sent_pps": 300000.0}, "no_loss": {"pps": 120000.0}}
    cost = {"max": one["max"], "no_loss": {"pps": 120000.0, "core": {"us_per_frame": 7.98, "busy": 0.95}}}
    # every DUT of the bench, five trials each: the page draws box plots of them
    probe = {"idle": {"p50_ms": 0.061, "p99_ms": 0.2}, "1%": {"p50_ms": 0.07, "p99_ms": 0.3}}
    results = {
        c: {"many": one, "few": one, "trials": [{"many": one, "few": one}] * 5, "latency": probe}
        for c in ("kernel", "uncached", "cached", "ovs")
    }
    results["cached"]["many"] = cost  # what a frame cost its core (a run before that has none: "-")
    for dut, name in (("reference", "bench-failover.json"), ("linux", "bench-failover-linux.json")):
        rounds = [{"round": 1, "detection_ms": 250.0, "loss_window_ms": 280.0, "connection_survived": dut == "linux"}]
        summary = {
            "dut": dut, "bfd": "100 ms x 3", "rounds": 1, "connections_survived": int(dut == "linux"),
            "loss_window_ms": {"min": 280.0, "median": 280.0, "max": 280.0}, "target_loss_window_ms": 500,
        }  # fmt: skip
        (tmp / name).write_text(__import__("json").dumps({"rounds": rounds, "summary": summary}))
    curve = [
        {"size": n, "working_set_ns": 100.0 + n / 1e4, "bytes_per_entry": 800, "rss_mb": n / 1e3,
         "floor_working_set_ns": 50.0 + n / 1e4}
        for n in (1000, 1000000)
    ]  # fmt: skip
    (tmp / "bench-scale.json").write_text(__import__("json").dumps({"sessions": curve, "routes": curve}))
    wire = {
        "sessions": [{"size": n, "held": n, "kpps": 70.0, "rss_mb": 70 + n / 1e3} for n in (1000, 1000000)],
        "routes": [{"size": n, "kcps": 18.0 - n / 1e5, "rss_mb": 76.0} for n in (1000, 100000)],
    }
    (tmp / "bench-scale-wire.json").write_text(__import__("json").dumps({"meta": {}, "results": wire}))
    (tmp / "bench-forwarding.json").write_text(
        __import__("json").dumps({"meta": {"path": "nat", "path_description": "synthetic"}, "results": results})
    )


def test_comparison_page_in_a_browser(runs, tmp_path):
    import json
    import shutil

    from ci import report_html

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("chromium and chromedriver are installed by make bootstrap")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    out = runs[0].parent.parent  # the directory holding both runs
    _bench(out)
    page = report_html.write(list(runs), out)
    data = json.loads((out / "results.json").read_text())
    assert {r["status"] for r in data["results"] if r["dut"] == SwitchOnly.name} == {"PASS", "FAIL", "n/a"}

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        browser.get(page.as_uri())
        assert browser.title == "edgelab comparison report"
        header = browser.find_elements(By.CSS_SELECTOR, "#matrix tr:first-child th")
        assert [h.text for h in header] == ["suite", "test", "reference", SwitchOnly.name], "one column per DUT"
        first = browser.find_elements(By.CSS_SELECTOR, "#matrix tr")[1]
        assert "Differs" in first.text, "the differing outcome comes first"
        link = first.find_element(By.CSS_SELECTOR, "td.FAIL a").get_attribute("href")
        assert link.endswith("/log.html#s1-t2") and SwitchOnly.name in link
        images = browser.find_elements(By.TAG_NAME, "img")
        assert images, "the forwarding plot is on the page"
        perf = browser.find_element(By.XPATH, "//h3[starts-with(., 'Forwarding')]/following-sibling::p[1]").text
        assert "medians of" in perf, perf
        cells = [
            td.text
            for td in browser.find_elements(
                By.XPATH, "//h3[starts-with(., 'Forwarding')]/following-sibling::table[1]//td[1]"
            )
        ]
        assert "ovs" in cells, cells
        costs = [
            tr.text
            for tr in browser.find_elements(
                By.XPATH, "//h3[starts-with(., 'Forwarding')]/following-sibling::table[1]//tr"
            )
        ]
        assert any(r.startswith("cached many") and r.endswith("7.98 (95% busy)") for r in costs), costs
        assert any(r.startswith("ovs many") and r.endswith("-") for r in costs), costs
        latency = browser.find_element(By.ID, "latency").text
        assert "1% p50 / p99 ms" in latency and "0.061 / 0.200" in latency, latency
        curves = browser.find_element(
            By.XPATH, "//h3[starts-with(., 'Cost at scale')]/following-sibling::table[1]"
        )  # (sessions: 100.1 -> 200 ns, 2.00x; the dict probe beside it 50.1 -> 150, 2.99x)
        assert "dict probe" in curves.text and "2.00x not met 2.99x" in curves.text, curves.text
        wire = browser.find_element(
            By.XPATH, "//h3[starts-with(., 'At scale on the wire')]/following-sibling::table[1]"
        )
        assert "sessions" in wire.text and "1,000-1,000,000" in wire.text and "17.0" in wire.text, wire.text
        failovers = [h.text for h in browser.find_elements(By.XPATH, "//h3[starts-with(., 'Failover')]")]
        assert any("--dut linux" in h for h in failovers) and any("--dut reference" in h for h in failovers), failovers
        assert all(
            browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in images
        )
    finally:
        browser.quit()


def test_soak_lists_what_failed_in_any_run(runs, capsys):
    ref, other = runs
    assert report.main([str(ref), str(ref), "--soak"]) == 0
    assert "no test failed in any run" in capsys.readouterr().out
    assert report.main([str(ref), str(other), "--soak"]) == 1
    out = capsys.readouterr().out
    assert "FAILED 1 of 2: Demo.Differs" in out and "run 2:" in out
