#!/usr/bin/env bash
# All tests: unit (no root), end-to-end pytest (topologies, real packets),
# Robot acceptance suites.  Each layer runs even if an earlier one failed;
# the exit status is non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/test
py=.venv/bin/python
status=0

# What the tests run on: the per-packet modules as the bootstrap compiled them (gateway/native.py).
$py -P gateway/native.py check || status=1

echo "== lint (ruff check, ruff format --check, mypy gateway) =="
$py -m ruff check . || status=1
$py -m ruff format --check . || status=1
$py -m mypy gateway || status=1

echo "== unit tests =="
$py -m pytest suites/unit -q -p no:cacheprovider --junitxml=results/test/unit.xml || status=1

echo "== end-to-end tests =="
$py -m pytest suites/e2e -q -p no:cacheprovider --junitxml=results/test/e2e.xml || status=1

echo "== Robot acceptance suites =="
bash ci/conformance.sh --out results/test/robot || status=1

# The other DUTs run the same suites; what they fail is a finding for the report,
# listed in suites/duts/findings/: this fails only when a run and that list disagree.
for dut in linux ovs; do
    echo "== Robot acceptance suites, DUT $dut (known findings: suites/duts/findings/$dut.txt) =="
    bash ci/conformance.sh --dut "$dut" --out "results/test/robot-$dut" --expect "suites/duts/findings/$dut.txt" \
        || status=1
done

# The seeded-fault runner on two faults of its catalogue: it must plant each in a copy of the
# tree, run the black-box suites and see them caught (the whole catalogue: make mutants).
echo "== seeded faults (a subset; the whole catalogue: make mutants) =="
$py -m edgelab mutants --only ttl-not-decremented,fw-unsolicited-allowed --require-caught --out results/test \
    || status=1

$py -m ci.report --totals results/test/unit.xml results/test/e2e.xml results/test/robot/output.xml || status=1
exit $status
