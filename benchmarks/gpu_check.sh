#!/usr/bin/env bash
# The GPU checks of issue 17, item 4, in one run of a few minutes on one H100/H200.
#
#   1. the CUDA-marked tests (pytest -m gpu);
#   2. benchmarks/bench_inr.py --sections precision: TF32 and bf16 dense prediction on the
#      2 mm brain mask (228,364 voxels) checked against fp32, largest absolute error printed;
#   3. benchmarks/bench_inr.py --sections dense2,dense1: 100 genes on the 2 mm mask, and at
#      1 mm streamed to NIfTI (the target: the factorized design under 2 s of prediction);
#   4. benchmarks/bench_inr.py --sections fit --fit-steps 5000: the paper's 5,000
#      full-batch steps, measured, for its design (paper) and ours (factorized), 12 x 512.
#
# Usage, from the repository root (the reference data found as usual: $BRAINEXPR_DATA or
# ../shared/data beside the checkout):
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # default: $OUT, else benchmarks/results/gpu
#
# Python: $PYTHON, else .venv/bin/python, else python3 (with src/ on PYTHONPATH).
# Without a CUDA device it prints one line saying so and exits with status 0, running
# nothing. Each step has its own time limit; a failed step is reported and the rest run;
# the exit status is 1 when any step failed.
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/results/gpu}}"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if ! DEVICE=$("$PY" -c 'import torch, sys
if not torch.cuda.is_available():
    sys.exit(1)
print(torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)' 2>/dev/null); then
    echo "gpu_check: no CUDA device (torch.cuda.is_available() is False or torch is missing for $PY): nothing run"
    exit 0
fi
mkdir -p "$OUT_DIR"
echo "gpu_check: $DEVICE; results in $OUT_DIR"
failed=()

step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*"
    local start=$SECONDS
    if timeout "$limit" "$@" > >(tee "$OUT_DIR/$name.log") 2> "$OUT_DIR/$name.err"; then
        echo "== $name: ok, $((SECONDS - start)) s"
    else
        echo "== $name: FAILED (status $?), $((SECONDS - start)) s; last lines of $OUT_DIR/$name.err:"
        tail -n 5 "$OUT_DIR/$name.err"
        failed+=("$name")
    fi
}

step cuda_tests 120 "$PY" -m pytest -q -m gpu tests -p no:cacheprovider
step precision 150 "$PY" benchmarks/bench_inr.py --sections precision --precision-steps 100 \
    --out "$OUT_DIR/precision.json"
step dense 240 "$PY" benchmarks/bench_inr.py --sections dense2,dense1 --out "$OUT_DIR/dense.json"
step fit5000 300 "$PY" benchmarks/bench_inr.py --sections fit --fit-steps 5000 \
    --fit-designs factorized,paper --out "$OUT_DIR/fit5000.json"

if [ ${#failed[@]} -gt 0 ]; then
    echo "gpu_check: failed: ${failed[*]}"
    exit 1
fi
echo "gpu_check: all steps ran"
