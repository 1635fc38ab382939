#!/usr/bin/env bash
# The GPU session's checks in one prepared script (at most ~8 minutes on one GPU):
#   the device-relevant tests, then `pfgmbench gpu-check` (throughput of cifar10-ncsnpp on synthetic data in
#   float32 and each speed mode under torchrun, peak memory, projected GPU-days, and the device's loss
#   trajectory against the CPU's), writing results/gpu/ (CSV + Markdown).
# Usage: experiments/gpu-check.sh [--device cuda|cpu] [--tiny] [--out DIR] [--no-tests]
#   CPU rehearsal (what CI runs): experiments/gpu-check.sh --device cpu --tiny --out runs/gpu-tiny --no-tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
args=()
tests=1
for a in "$@"; do
  if [ "$a" = "--no-tests" ]; then tests=0; else args+=("$a"); fi
done
if [ "$tests" = 1 ]; then
  echo "gpu-check: tests (compute modes, formulas, samplers)" >&2
  $PY -m pytest -q -x tests/test_compute.py tests/test_formulas.py tests/test_sampler.py
fi
$PY -m pfgmbench gpu-check "${args[@]}"
