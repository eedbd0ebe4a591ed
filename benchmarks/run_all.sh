#!/usr/bin/env bash
# Run every benchmark and keep its JSON (and the quality table) in one folder.
#
#   benchmarks/run_all.sh [OUT_DIR] [--quick]
#
# OUT_DIR defaults to /tmp/edkeras-bench-<date>. --quick runs the quick variants and a
# reduced quality budget (2,000 / 500 / 5,000 events, 3 epochs) instead of the default
# (4,000 / 1,000 / 5,000 events, 4 epochs). Speeds are compared only within one run; the
# machine's load average is recorded in load.txt before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-/tmp/edkeras-bench-$(date +%F)}
QUICK=${2:-}
mkdir -p "$OUT"
{ date -Is; nproc; cat /proc/loadavg; } >"$OUT/load.txt"

if [ "$QUICK" = "--quick" ]; then
  $PY benchmarks/simulate.py --quick >"$OUT/simulate.json"
  $PY benchmarks/train.py --quick >"$OUT/train.json"
  $PY benchmarks/fit_memory.py --events 3500 --steps 20 >"$OUT/fit_memory.json"
  $PY benchmarks/pipeline.py --quick >"$OUT/pipeline.json"
  $PY benchmarks/pointing.py --quick >"$OUT/pointing.json"
  $PY benchmarks/oracle.py --quick >"$OUT/oracle.json"
  $PY benchmarks/quality.py --n-train 2000 --n-val 500 --n-test 5000 --epochs 3 \
    --out "$OUT/quality.json" --markdown "$OUT/quality.md" >/dev/null
else
  $PY benchmarks/simulate.py >"$OUT/simulate.json"
  $PY benchmarks/train.py >"$OUT/train.json"
  $PY benchmarks/fit_memory.py >"$OUT/fit_memory.json"
  $PY benchmarks/pipeline.py >"$OUT/pipeline.json"
  $PY benchmarks/pointing.py >"$OUT/pointing.json"
  $PY benchmarks/alert.py >"$OUT/alert.json"
  $PY benchmarks/oracle.py >"$OUT/oracle.json"
  $PY benchmarks/quality.py --out "$OUT/quality.json" --markdown "$OUT/quality.md" >/dev/null
fi
cat /proc/loadavg >>"$OUT/load.txt"
echo "benchmarks written to $OUT"
