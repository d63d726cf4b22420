#!/usr/bin/env bash
# The whole conformance N times on this machine; every test that failed even once is listed.
#
#   ci/soak.sh [-n N] [--dut NAME] [--out DIR]      (make soak N=5)
set -uo pipefail
cd "$(dirname "$0")/.."
n=5
dut="${EDGELAB_DUT:-reference}"
out="results/soak"
while [ $# -gt 0 ]; do
    case "$1" in
        -n) n="$2"; shift 2 ;;
        --dut) dut="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "soak: unknown argument $1" >&2; exit 2 ;;
    esac
done
rm -rf "$out"
runs=()
for i in $(seq 1 "$n"); do
    echo "== soak: run $i of $n (DUT $dut) =="
    bash ci/conformance.sh --dut "$dut" --out "$out/run-$i" >"$out-run-$i.log" 2>&1
    runs+=("$out/run-$i/output.xml")
    grep -E "^$dut: [0-9]+ passed" "$out-run-$i.log" || tail -1 "$out-run-$i.log"
done
.venv/bin/python -m ci.report --soak "${runs[@]}"
