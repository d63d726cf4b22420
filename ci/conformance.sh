#!/usr/bin/env bash
# The main job: Robot Framework acceptance suites against a topology with one
# gateway implementation; writes Robot's report/log/output.xml and a summary
# into the output directory, prints the summary, fails if any test failed --
# or, with --expect FILE, if the failed tests are not exactly the DUT's known
# findings listed in FILE (suites/duts/findings/DUT.txt).
#
#   ci/conformance.sh [--dut NAME] [--out DIR] [--expect FILE] [SUITE.robot ...]
set -uo pipefail
cd "$(dirname "$0")/.."

dut="${EDGELAB_DUT:-reference}"
out="results"
expect=()
suites=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dut) dut="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --expect) expect=(--expect "$2"); shift 2 ;;
        *) suites+=("$1"); shift ;;
    esac
done
[ "${#suites[@]}" -gt 0 ] || suites=(suites/robot)

mkdir -p "$out"
# Each test names the capabilities it needs (tags needs:CAP); a test that needs
# what the DUT's driver does not declare is skipped as n/a with the reason
# (suites/lib/applicable.py), never run and never passed.
echo "conformance: DUT $dut, suites ${suites[*]}, results in $out/"
.venv/bin/python -m suites.duts.versions "$dut" > "$out/versions.json" || echo "conformance: no versions.json" >&2
.venv/bin/python -m robot --outputdir "$out" --pythonpath . --variable "DUT:$dut" \
    --prerunmodifier "suites.lib.applicable.NotApplicable:$dut" \
    --name "edgelab conformance ($dut)" --metadata "DUT:$dut" --consolewidth 100 "${suites[@]}"
rc=$?
.venv/bin/python -m ci.report "$out/output.xml" --write "$out" "${expect[@]}"
report_rc=$?
if [ "${#expect[@]}" -gt 0 ]; then
    # Judged against the known findings: the report's verdict is the run's.
    [ "$rc" -lt 251 ] && rc=$report_rc
fi
# ci.report exits 1 when a test failed (Robot said so already), 2 when it could not report.
if [ "$report_rc" -ge 2 ]; then
    echo "conformance: the report could not be written" >&2
    [ "$rc" -ne 0 ] || rc=1
fi
exit $rc
