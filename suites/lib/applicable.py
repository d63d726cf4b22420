"""Robot pre-run modifier: a test that needs what the DUT lacks is *n/a*, never a pass.

Where this sits: ``ci/conformance.sh`` runs Robot with
``--prerunmodifier suites.lib.applicable.NotApplicable:DUT``.  Tests name
their needs as tags (``needs:nat.snat``; names in ``suites/duts/base.py``); for
each test that needs a capability the DUT's driver does not declare, the
test's setup becomes ``Skip`` with the reason (and its teardown goes), so the report shows it as
skipped with "n/a: DUT linux lacks nat.one_to_one" instead of running it.
"""

from __future__ import annotations

from typing import Any

from robot.api import SuiteVisitor

from suites.duts import CAPABILITIES, capabilities

PREFIX = "needs:"


class NotApplicable(SuiteVisitor):
    def __init__(self, dut: str) -> None:
        self.dut = dut
        self.have = capabilities(dut)

    def start_test(self, test: Any) -> None:
        needs = {tag[len(PREFIX) :] for tag in test.tags if tag.startswith(PREFIX)}
        unknown = needs - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"test {test.longname!r} needs unknown capabilities: {', '.join(sorted(unknown))}")
        missing = sorted(needs - self.have)
        if missing:
            test.setup.config(name="Skip", args=(f"n/a: DUT {self.dut} lacks {', '.join(missing)}",))
            test.teardown.config(name=None)  # it would undo what the test never did
            test.tags.add("n/a")

    def end_suite(self, suite: Any) -> None:
        """A suite whose every test is n/a does not set anything up (its topology may be one
        this DUT cannot run)."""
        tests = list(suite.all_tests)
        if tests and all("n/a" in t.tags for t in tests):
            suite.setup.config(name=None)
            suite.teardown.config(name=None)
