"""End-to-end fixtures: one running topology per session, artifacts on failure.

Options: ``--dut NAME`` selects the gateway implementation (default
``reference``); ``--topology-only`` starts the topology, prints how to reach
it and waits for Enter (for debugging, as FRR topotests do).

Capabilities: a test names what it needs with ``@pytest.mark.needs("nat.snat",
...)`` (names in ``suites/duts/base.py``); for a DUT whose driver does not
declare one the test is skipped as *n/a* with the reason, never passed.

Leaks: before a module's topology stops, each gateway still running is asked for memory held
for nothing (``no_leaks``); the reference gateway's daemon runs without automatic garbage
collection, and an object it left in a reference cycle fails the module.

Artifacts: when a test fails, the gateway's logs, its normalized counters and
(for the reference gateway) its ``show`` output go to ``artifacts/e2e/<test>/``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "e2e"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dut", default=os.environ.get("EDGELAB_DUT", "reference"), help="gateway implementation under test"
    )
    parser.addoption("--topology-only", action="store_true", help="start the topology and wait; run no tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*capabilities): the DUT capabilities the test needs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests needing what the DUT lacks are n/a: skipped, with the missing capabilities."""
    from suites.duts import CAPABILITIES, capabilities

    dut = config.getoption("--dut")
    have = capabilities(dut)
    for item in items:
        needs = {cap for mark in item.iter_markers("needs") for cap in mark.args}
        unknown = needs - set(CAPABILITIES)
        if unknown:
            raise pytest.UsageError(f"{item.nodeid} needs unknown capabilities: {', '.join(sorted(unknown))}")
        missing = sorted(needs - have)
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"n/a: DUT {dut} lacks {', '.join(missing)}"))


def _missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "end-to-end tests need root"
    for tool in ("mnexec", "ovs-vsctl", "ethtool", "ping"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (run make bootstrap)"
    return None


@contextmanager
def running(
    request: pytest.FixtureRequest, name: str, plan: dict[str, Any] | None = None, needs_frr: bool = False
) -> Iterator[Any]:
    """Topology ``name`` up for a module fixture (with ``plan``, a changed copy of its plan), on
    the DUT of ``--dut``; without root, Mininet or Open vSwitch (or FRR) the module is skipped —
    in CI it fails, as CI must run it."""
    missing = _missing_prerequisites() or (
        "FRR is not installed (make bootstrap)" if needs_frr and not os.path.exists("/usr/lib/frr/zebra") else None
    )
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must run the {name} tests")
        pytest.skip(missing)
    import topologies

    with topologies.start(name, dut=request.config.getoption("--dut"), plan=plan) as lab:
        yield lab
        no_leaks(lab)


def no_leaks(lab: Any) -> None:
    """Before the topology stops: each gateway still running is asked what memory it holds for
    nothing (``GatewayHandle.leaks``).  The reference gateway runs without automatic garbage
    collection, so an object its daemon left in a reference cycle during the module's tests
    (a bug of the kind ``gateway/gcpolicy.py`` warns of) was never freed: the module errors."""
    from suites.lib.gateway import leaked

    found = leaked(lab)
    if found:
        pytest.fail(f"objects in reference cycles, never freed, in the gateways' daemons: {found}")


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Any]:
    """edge-basic, started for each module that uses it and stopped at its end: a module with
    a topology of its own (edge-ha, evi-dci, multi-tenant) never runs beside it, as two
    topologies with a node of the same name would collide (interface, namespace and TAP names
    in the root namespace are made from node names)."""
    with running(request, "edge-basic") as up:
        if request.config.getoption("--topology-only"):
            print("\ntopology edge-basic is up; in another shell: edgelab gw edge1 show summary")
            input("press Enter to tear it down ")
            pytest.skip("--topology-only")
        yield up


@pytest.fixture(scope="module")
def plan(lab: Any) -> dict[str, Any]:
    return lab.plan


@pytest.fixture
def gw(lab: Any) -> Any:
    """The running gateway's handle, asked for anew by each test: a test may restart it
    (``lab.start_gateway``), and the next must not hold the stopped one's."""
    return lab.gateway("edge1")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(autouse=True)
def artifacts_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.failed or "lab" not in request.fixturenames:
        return
    lab = request.getfixturevalue("lab")
    out = ARTIFACTS / request.node.name
    out.mkdir(parents=True, exist_ok=True)
    for name in lab.plan.get("gateways", {}):
        handle = lab.gateway(name)
        whats = ["counters"]
        if "internals.show" in handle.capabilities:
            whats += ["summary", "drops", "traces", "mac", "arp", "fib", "ports", "instances"]
        for what in whats:
            try:
                data = handle.counters() if what == "counters" else handle.show(what)
            except Exception as exc:  # noqa: BLE001 - an artifact must not hide the failure
                data = {"error": str(exc)}
            (out / f"{name}-{what}.json").write_text(json.dumps(data, indent=2))
        for log_name, text in handle.logs().items():
            (out / log_name).write_text(text)
