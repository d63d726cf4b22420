#!/usr/bin/env bash
# The main job: Robot Framework acceptance suites against a topology with one
# gateway implementation; writes Robot's report/log/output.xml and a summary
# into the output directory, prints the summary, fails if any test failed.
#
#   ci/conformance.sh [--dut NAME] [--out DIR] [SUITE.robot ...]
set -uo pipefail
cd "$(dirname "$0")/.."

dut="${EDGELAB_DUT:-reference}"
out="results"
suites=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dut) dut="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) suites+=("$1"); shift ;;
    esac
done
[ "${#suites[@]}" -gt 0 ] || suites=(suites/robot)

mkdir -p "$out"
# Tests of the reference gateway's own internals (cache counters, HA agent) are
# tagged reference-internals: other gateways are not judged on them.
exclude=()
[ "$dut" = "reference" ] || exclude=(--exclude reference-internals)
echo "conformance: DUT $dut, suites ${suites[*]}, results in $out/"
.venv/bin/python -m robot --outputdir "$out" --pythonpath . --variable "DUT:$dut" "${exclude[@]}" \
    --name "edgelab conformance ($dut)" --metadata "DUT:$dut" --consolewidth 100 "${suites[@]}"
rc=$?
.venv/bin/python -m ci.report "$out/output.xml" --write "$out" || rc=${rc:-1}
exit $rc
