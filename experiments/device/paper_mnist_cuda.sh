#!/usr/bin/env bash
# The paper's 2C2FC (`paper-mnist`, seed 0) on a lent GPU, in one call of the device tool:
#  1. the PyTorch mirror on CUDA against the Numba core, integer for integer (python -m
#     reference.check: a few paper-mnist minibatches from the seed-0 network, every spike of every
#     step, every state, trace, contrastive sum and weight compared with exact equality);
#  2. beside it, the seed-0 run continued from its committed checkpoint
#     (experiments/state/paper-mnist/seed0.npz, trained so far by the core) with
#     `--backend torch --device cuda` until BUDGET_S seconds after the start; SIGTERM makes the
#     CLI finish its minibatch and save, so the run stays the uninterrupted one (bit-exact backends).
# Results under $OUT: env.txt, check.txt, train.log, seed0.json, gpu.txt (utilisation every 30 s), the checkpoint in 15 MiB parts
# (seed0.npz.part-aa, -ab: `cat` them back together).  MNIST from $DATA/mnist (the IDX .gz files).
# Usage (device tool, from the repository root, .data/mnist carried):
#   BUDGET_S=450 bash experiments/device/paper_mnist_cuda.sh
set -uo pipefail
t0=$(date +%s)
OUT=${OUT:-/tmp/paper-mnist-cuda}; DATA=${DATA:-.data}; BUDGET_S=${BUDGET_S:-450}
CHECK_SAMPLES=${CHECK_SAMPLES:-16}; CHECK_UPDATES=${CHECK_UPDATES:-3}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-/tmp/numba-cache}
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  nproc; "$PY" --version; } > "$OUT/env.txt" 2>&1
# the package's metadata registers the backends (entry points); no dependency is fetched
"$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >> "$OUT/env.txt" 2>&1 \
  || { "$PY" -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/site . \
       >> "$OUT/env.txt" 2>&1 && export PYTHONPATH=/tmp/site; } \
  || { echo "install failed" >> "$OUT/env.txt"; cat "$OUT/env.txt"; exit 1; }
"$PY" -c "import numpy, numba, torch; print('numpy', numpy.__version__, 'numba', numba.__version__,
'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" >> "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

( while true; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; sleep 30; done ) \
  > "$OUT/gpu.txt" 2>&1 &
gpu=$!
ck=/tmp/paper-mnist-seed0.npz
cp experiments/state/paper-mnist/seed0.npz "$ck"
( NUMBA_NUM_THREADS=8 timeout 300 "$PY" -m reference.check --preset paper-mnist --bits 8 \
    --samples "$CHECK_SAMPLES" --updates "$CHECK_UPDATES" --seed 0 --device cuda \
    --data-dir "$DATA/mnist" > "$OUT/check.txt" 2>&1; echo "exit code $?" >> "$OUT/check.txt" ) &
check=$!
left=$(( BUDGET_S - ($(date +%s) - t0) ))
NUMBA_NUM_THREADS=4 timeout -s TERM -k 75 "$left" "$PY" -m neurochip.run --preset paper-mnist \
    --dataset mnist --data-dir "$DATA/mnist" --bits 8 --val-split 5000 --epochs 250 --seed 0 \
    --save "$ck" --checkpoint-every 10 --resume "$ck" --backend torch --device cuda \
    --threads 4 --json "$OUT/seed0.json" > "$OUT/train.log" 2>&1
echo "neurochip.run exit code $? after $(( $(date +%s) - t0 )) s" >> "$OUT/train.log"
wait "$check"
kill "$gpu" 2>/dev/null
tail -n 30 "$OUT/check.txt"; tail -n 30 "$OUT/train.log"
split -b 15M "$ck" "$OUT/seed0.npz.part-"
sha256sum "$ck" | tee -a "$OUT/train.log"
