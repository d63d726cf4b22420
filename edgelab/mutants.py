"""``edgelab mutants``: how many realistic faults the black-box suites catch.

Each fault of the catalogue (``edgelab/faults.py``) is a one-line slip a gateway
developer could make, written as an exact text replacement in one file of the
reference gateway.  The runner copies the working tree once (tracked and
untracked files, never ``.venv``, ``results`` or ``artifacts``), then for each
fault: patches the copy, runs the black-box suites from it, restores the file.
The tree you run it from is never modified.

The suites run in three stages, each fail-fast, until one catches the fault:

1. ``neutral``   Robot, without the ``reference-internals`` tests: what another
                 gateway is judged on;
2. ``internals`` Robot, the ``reference-internals`` tests only;
3. ``e2e``       the end-to-end pytest suites.

So each fault says which part of the suites caught it, and three figures come
out: caught by the DUT-neutral conformance, by the Robot conformance, by all
black-box suites.  A fault may name the suites it concerns (``first``): they run
first in each stage, which changes how soon it is caught, never whether.

A stage that runs past its time bound is killed (its process group) and the
testbed cleaned (``edgelab clean``); the fault counts as caught by a timeout only
if nothing else caught it, and is listed apart: a hang is a finding, not a catch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edgelab.faults import FAULTS, Fault

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("neutral", "internals", "e2e")
STOPPED = ("Test execution stopped due to a fatal error", "exit-on-failure mode is in use")


class MutantsError(Exception):
    pass


@dataclass
class Outcome:
    fault: str
    stage: str | None = None  # the stage that caught it, None: escaped
    test: str | None = None
    message: str = ""
    seconds: float = 0.0
    timeouts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "caught_by": self.stage,
            "test": self.test,
            "message": self.message,
            "seconds": round(self.seconds, 1),
            "timeouts": self.timeouts,
        }


def apply(text: str, fault: Fault) -> str:
    """The file's text with the fault in it; the find text must occur exactly once."""
    n = text.count(fault.find)
    if n != 1:
        raise MutantsError(f"fault {fault.name}: {fault.find!r} occurs {n} times in {fault.path} (must be once)")
    return text.replace(fault.find, fault.replace)


def check_catalogue(root: Path = ROOT) -> list[str]:
    """Every fault applies to the tree at ``root`` and changes it: the problems, if any."""
    problems = []
    names = set()
    for fault in FAULTS:
        if fault.name in names:
            problems.append(f"fault {fault.name}: the name is used twice")
        names.add(fault.name)
        path = root / fault.path
        if not path.exists():
            problems.append(f"fault {fault.name}: no file {fault.path}")
            continue
        try:
            if apply(path.read_text(), fault) == path.read_text():
                problems.append(f"fault {fault.name}: the patch changes nothing")
        except MutantsError as exc:
            problems.append(str(exc))
    return problems


def copy_tree(dest: Path, rev: str | None = None) -> None:
    """The working tree's tracked and untracked files (not ignored ones) into ``dest``; with
    ``rev``, the tree of that commit instead (the suites of another revision, say)."""
    if rev is not None:
        dest.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True)
        if archive.returncode != 0:
            raise MutantsError(f"no revision {rev}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if not src.is_file():  # (deleted in the working tree)
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def ordered(paths: list[Path], first: tuple[str, ...]) -> list[Path]:
    """The suite files with the fault's own first (``ftp`` names ftp.robot and test_ftp.py)."""

    def key(p: Path) -> tuple[int, str]:
        stem = p.stem.removeprefix("test_")
        return (0 if stem in first else 1, p.name)

    return sorted(paths, key=key)


def suite_env(tree: Path) -> dict[str, str]:
    """The suites of the copy import the copy (the gateway they start runs from it too)."""
    return dict(os.environ, PYTHONPATH=str(tree), EDGELAB_DUT="reference")


def stage_command(
    stage: str, tree: Path, out: Path, first: tuple[str, ...], robot_files: list[str] | None = None
) -> list[str]:
    """``robot_files``: these Robot suites instead of all of them (the clean-tree check)."""
    py = sys.executable
    if stage == "e2e":
        files = ordered(sorted((tree / "suites/e2e").glob("test_*.py")), first)
        return [py, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--junitxml", str(out / "e2e.xml")] + [
            str(f.relative_to(tree)) for f in files
        ]
    files = (
        [tree / f for f in robot_files]
        if robot_files
        else ordered(sorted((tree / "suites/robot").glob("*.robot")), first)
    )
    select = ["--exclude", "reference-internals"] if stage == "neutral" else ["--include", "reference-internals"]
    return (
        [py, "-m", "robot", "--outputdir", str(out / stage), "--output", "output.xml", "--log", "NONE"]
        + ["--report", "NONE", "--pythonpath", ".", "--variable", "DUT:reference", "--exitonfailure"]
        + ["--runemptysuite", "--prerunmodifier", "suites.lib.applicable.NotApplicable:reference"]
        + ["--consolewidth", "100", "--console", "dotted"]
        + select
        + [str(f.relative_to(tree)) for f in files]
    )


def robot_failure(output: Path) -> tuple[str, str] | None:
    """The first test that failed in a Robot output.xml (not one stopped by exit-on-failure)."""
    if not output.exists():
        return None
    for test in ET.parse(output).getroot().iter("test"):
        status = test.find("status")
        if status is None or status.get("status") != "FAIL":
            continue
        message = (status.text or "").strip()
        if any(s in message for s in STOPPED):
            continue
        return (test.get("name") or "?", message)
    return None


def junit_failure(output: Path) -> tuple[str, str] | None:
    """The first test case that failed or errored in a pytest JUnit XML."""
    if not output.exists():
        return None
    for case in ET.parse(output).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            bad = case.find(tag)
            if bad is not None:
                name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
                return (name, (bad.get("message") or "").strip())
    return None


def run_stage(
    stage: str, tree: Path, out: Path, first: tuple[str, ...], bound: float, log: IO[bytes]
) -> tuple[str | None, str, bool]:
    """Runs one stage: (failed test or None, its message, whether the time bound was hit).
    A runner that could not run at all (Robot's own errors, pytest interrupted or misused)
    is the runner's problem, never a catch."""
    cmd = stage_command(stage, tree, out, first)
    env = suite_env(tree)
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        subprocess.run([sys.executable, "-m", "edgelab", "clean"], cwd=tree, env=env, stdout=log, stderr=log)
    failed = junit_failure(out / "e2e.xml") if stage == "e2e" else robot_failure(out / stage / "output.xml")
    if failed is None and not timed_out:
        broken = proc.returncode >= 251 if stage != "e2e" else proc.returncode not in (0, 5)
        if broken:
            raise MutantsError(f"stage {stage} could not run (exit status {proc.returncode}): see {log.name}")
    if failed is None:
        return (None, "", timed_out)
    return (failed[0], failed[1], timed_out)


def baseline(tree: Path, out: Path, bound: float) -> None:
    """The clean copy must pass a quick suite first: a testbed that cannot run would make
    every fault look caught."""
    bdir = out / "baseline"
    if bdir.exists():
        shutil.rmtree(bdir)
    bdir.mkdir(parents=True)
    cmd = stage_command("neutral", tree, bdir, (), robot_files=["suites/robot/forwarding.robot"])
    with open(bdir / "run.log", "wb") as log:
        try:
            subprocess.run(cmd, cwd=tree, env=suite_env(tree), stdout=log, stderr=subprocess.STDOUT, timeout=bound)
        except subprocess.TimeoutExpired:
            raise MutantsError(
                f"the clean tree's forwarding suite ran past {bound:.0f} s: see {bdir}/run.log"
            ) from None
    failed = robot_failure(bdir / "neutral" / "output.xml")
    if failed is not None or not (bdir / "neutral" / "output.xml").exists():
        what = f"{failed[0]}: {failed[1].splitlines()[0] if failed[1] else ''}" if failed else "no output"
        raise MutantsError(
            f"the clean tree fails its forwarding suite ({what}); fix the testbed first (make bootstrap)"
        )


def run_fault(fault: Fault, tree: Path, out: Path, bound: float, stages: tuple[str, ...]) -> Outcome:
    path = tree / fault.path
    original = path.read_text()
    outcome = Outcome(fault.name)
    started = time.monotonic()
    fdir = out / fault.name
    if fdir.exists():
        shutil.rmtree(fdir)
    fdir.mkdir(parents=True)
    path.write_text(apply(original, fault))
    try:
        with open(fdir / "run.log", "wb") as log:
            for stage in stages:
                test, message, timed_out = run_stage(stage, tree, fdir, fault.first, bound, log)
                if timed_out:
                    outcome.timeouts.append(stage)
                if test is not None:
                    outcome.stage, outcome.test, outcome.message = (
                        stage,
                        test,
                        message.splitlines()[0][:200] if message else "",
                    )
                    break
    finally:
        path.write_text(original)
        outcome.seconds = time.monotonic() - started
    return outcome


def table(outcomes: list[Outcome]) -> str:
    rows = [("fault", "caught by", "test", "time")]
    for o in outcomes:
        by = o.stage or ("TIMEOUT" if o.timeouts else "ESCAPED")
        rows.append((o.fault, by, o.test or "-", f"{o.seconds:.0f} s"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    n = len(outcomes)

    def pct(k: int) -> float:
        return round(100.0 * k / n, 1) if n else 0.0

    neutral = sum(1 for o in outcomes if o.stage == "neutral")
    robot = sum(1 for o in outcomes if o.stage in ("neutral", "internals"))
    black_box = sum(1 for o in outcomes if o.stage is not None)
    return {
        "faults": n,
        "caught_black_box": black_box,
        "caught_black_box_pct": pct(black_box),
        "caught_robot": robot,
        "caught_robot_pct": pct(robot),
        "caught_neutral": neutral,
        "caught_neutral_pct": pct(neutral),
        "escapes": [o.fault for o in outcomes if o.stage is None],
    }


def main(
    only: list[str] | None = None,
    out_dir: str = "results",
    bound: float = 600.0,
    require_caught: bool = False,
    list_only: bool = False,
    rev: str | None = None,
) -> int:
    problems = check_catalogue()
    if problems:
        for p in problems:
            print(f"mutants: {p}", file=sys.stderr)
        return 2
    faults = list(FAULTS)
    if only:
        known = {f.name for f in FAULTS}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise MutantsError(f"no fault named {', '.join(unknown)} (edgelab mutants --list)")
        faults = [f for f in FAULTS if f.name in only]
    if list_only:
        for f in faults:
            print(f"{f.name:32} {f.path}: {f.breaks}")
        return 0
    if os.geteuid() != 0:
        raise MutantsError("the suites need root (namespaces, Open vSwitch): run as root")
    out = Path(out_dir).resolve() / "mutants"  # (the suites run from the copy)
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="edgelab-mutants-") as tmp:
        tree = Path(tmp) / "tree"
        copy_tree(tree, rev)
        problems = check_catalogue(tree)
        if problems:
            raise MutantsError(f"the catalogue does not apply to {rev or 'the working tree'}: {problems[0]}")
        print("mutants: the clean tree first (suites/robot/forwarding.robot) ...", flush=True)
        baseline(tree, out, bound)
        print(f"mutants: {len(faults)} faults, each through the black-box suites ({', '.join(STAGES)}), fail-fast;")
        print(
            f"mutants: {'revision ' + rev if rev else 'working tree'} copied to {tree}, logs in {out}/<fault>/run.log, {bound:.0f} s per stage at most"
        )
        for i, fault in enumerate(faults, 1):
            print(f"[{i}/{len(faults)}] {fault.name}: {fault.breaks} ...", end="", flush=True)
            o = run_fault(fault, tree, out, bound, STAGES)
            outcomes.append(o)
            verdict = f"caught by {o.stage}: {o.test}" if o.stage else ("TIMEOUT" if o.timeouts else "ESCAPED")
            print(f" {verdict} ({o.seconds:.0f} s)", flush=True)
            (out / "mutants.json").write_text(
                json.dumps({"outcomes": [x.to_dict() for x in outcomes], "summary": summary(outcomes)}, indent=2)
            )
    s = summary(outcomes)
    text = table(outcomes) + (
        f"\n\ncaught by the black-box suites: {s['caught_black_box']}/{s['faults']} ({s['caught_black_box_pct']} %)"
        f"\ncaught by the Robot conformance: {s['caught_robot']}/{s['faults']} ({s['caught_robot_pct']} %)"
        f"\ncaught by its DUT-neutral part: {s['caught_neutral']}/{s['faults']} ({s['caught_neutral_pct']} %)"
        f"\nescapes: {', '.join(s['escapes']) or 'none'}\n"
    )
    (out / "mutants.txt").write_text(text)
    print()
    print(text, end="")
    print(f"mutants: {out / 'mutants.json'}, {out / 'mutants.txt'}")
    if require_caught and s["escapes"]:
        return 1
    return 0
