"""Conformance summaries from Robot's output.xml (and pytest's JUnit XML).

python -m ci.report results/output.xml [--write results]
    a table of every test and its status, totals at the end; --write also
    saves summary.md and summary.json beside the report.
python -m ci.report A/output.xml B/output.xml --write compare
    several runs (one per DUT) side by side: one row per test, one column
    per DUT, as a vendor comparison table, tests whose outcome differs first.
python -m ci.report results/output.xml --expect suites/duts/findings/linux.txt
    as the first form, but the exit status says whether the failed tests are
    exactly the known findings of that DUT (a new failure, or a finding that
    no longer fails, is reported and fails).

Status: PASS, FAIL, n/a (skipped because the DUT lacks a capability the test
needs; the message says which), SKIP (skipped for another reason).
python -m ci.report --totals unit.xml e2e.xml robot/output.xml
    one line per layer and a closing "N passed, N failed" line.
python -m ci.report --soak run-1/output.xml run-2/output.xml ...
    the same conformance run several times: every test that failed in any run,
    with how often; exit status 1 if there is one (make soak).
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def robot_results(path: Path) -> dict[str, Any]:
    from robot.api import ExecutionResult

    result = ExecutionResult(str(path))
    dut = result.suite.metadata.get("DUT", path.parent.name)
    tests = [
        {
            "suite": t.parent.name,
            "test": t.name,
            "status": "n/a" if t.status == "SKIP" and t.message.startswith("n/a") else t.status,
            "tags": list(t.tags),
            "message": first_assertion(t.message),
            "seconds": round(t.elapsed_time.total_seconds(), 2),
        }
        for t in result.suite.all_tests
    ]
    return {"dut": dut, "source": str(path), "tests": tests}


def first_assertion(message: str) -> str:
    """The first failing assertion of a Robot message (not "Several failures occurred:")."""
    for line in message.splitlines():
        line = line.strip()
        if line and line != "Several failures occurred:":
            return line[3:] if line[:1].isdigit() and line[1:3] == ") " else line
    return ""


def junit_counts(path: Path) -> tuple[int, int, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def summary(runs: list[dict[str, Any]]) -> str:
    if len(runs) == 1:
        run = runs[0]
        rows = [[t["suite"], t["test"], t["status"], t["message"][:60]] for t in run["tests"]]
        text = f"Conformance of DUT '{run['dut']}'\n\n" + _table(["suite", "test", "status", "message"], rows)
    else:
        keys = list(dict.fromkeys((t["suite"], t["test"]) for r in runs for t in r["tests"]))
        status = {(r["dut"], t["suite"], t["test"]): t["status"] for r in runs for t in r["tests"]}
        rows = [[s, n, *(status.get((r["dut"], s, n), "-") for r in runs)] for s, n in keys]
        rows.sort(key=lambda row: len(set(row[2:])) == 1)  # differing outcomes first, order kept otherwise
        text = "Conformance comparison\n\n" + _table(["suite", "test", *(r["dut"] for r in runs)], rows)
    totals = []
    for r in runs:
        passed = sum(t["status"] == "PASS" for t in r["tests"])
        failed = sum(t["status"] == "FAIL" for t in r["tests"])
        na = sum(t["status"] == "n/a" for t in r["tests"])
        skipped = sum(t["status"] == "SKIP" for t in r["tests"])
        totals.append(f"{r['dut']}: {passed} passed, {failed} failed, {na} n/a, {skipped} skipped")
    return text + "\n\n" + "\n".join(totals)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ci.report")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--write", type=Path, help="directory for summary.md and summary.json")
    ap.add_argument("--totals", action="store_true", help="count tests across pytest JUnit XML and Robot output.xml")
    ap.add_argument("--expect", type=Path, help="the DUT's known findings: 'Suite.Test' per line, '#' comments")
    ap.add_argument("--soak", action="store_true", help="runs of the same suites: list every test that ever failed")
    args = ap.parse_args(argv)
    missing = [str(f) for f in args.files if not f.exists()]
    if args.totals:
        passed = failed = skipped = 0
        for f in args.files:
            if not f.exists():
                print(f"report: {f}: missing (that layer did not run)")
                failed += 1
                continue
            if f.name == "output.xml":
                run = robot_results(f)
                p = sum(t["status"] == "PASS" for t in run["tests"])
                x = sum(t["status"] == "FAIL" for t in run["tests"])
                s = sum(t["status"] in ("SKIP", "n/a") for t in run["tests"])
            else:
                p, x, s = junit_counts(f)
            print(f"report: {f}: {p} passed, {x} failed, {s} skipped")
            passed, failed, skipped = passed + p, failed + x, skipped + s
        print(f"{passed} passed, {failed} failed, {skipped} skipped")
        return 1 if failed else 0
    if missing:
        print(f"report: no such file: {', '.join(missing)} (did the suites run?)", file=sys.stderr)
        return 2
    runs = [robot_results(f) for f in args.files]
    if args.soak:
        return soak(runs)
    text = summary(runs)
    print("\n" + text)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        (args.write / "summary.md").write_text(text + "\n")
        (args.write / "summary.json").write_text(json.dumps(runs, indent=2) + "\n")
        print(f"\nreport: {args.write}/report.html (Robot report), {args.write}/log.html, {args.write}/summary.md")
    if args.expect:
        return check_findings(runs, args.expect)
    return 1 if any(t["status"] == "FAIL" for r in runs for t in r["tests"]) else 0


def soak(runs: list[dict[str, Any]]) -> int:
    """Every test that failed in any of ``runs`` (the same suites, run again and again)."""
    failed: dict[str, list[str]] = {}
    for i, run in enumerate(runs, start=1):
        for t in run["tests"]:
            if t["status"] == "FAIL":
                failed.setdefault(f"{t['suite']}.{t['test']}", []).append(f"run {i}: {t['message']}")
    tests = len(runs[0]["tests"]) if runs else 0
    print(f"soak: {len(runs)} runs of {tests} tests")
    for name, why in sorted(failed.items()):
        print(f"soak: FAILED {len(why)} of {len(runs)}: {name}")
        for line in why:
            print(f"        {line}")
    if not failed:
        print("soak: no test failed in any run")
    return 1 if failed else 0


def read_findings(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def check_findings(runs: list[dict[str, Any]], path: Path) -> int:
    """0 when the failed tests are exactly the known findings listed in ``path``."""
    known = read_findings(path)
    failed = {f"{t['suite']}.{t['test']}" for r in runs for t in r["tests"] if t["status"] == "FAIL"}
    new, gone = sorted(failed - known), sorted(known - failed)
    for name in new:
        print(f"report: NEW FAILURE (not a known finding in {path}): {name}")
    for name in gone:
        print(f"report: known finding no longer fails (remove it from {path}): {name}")
    if not new and not gone:
        print(f"report: the {len(known)} failures are the known findings listed in {path}")
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main())
