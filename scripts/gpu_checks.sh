#!/usr/bin/env bash
# The checks that need a GPU, as run on a lent H100/H200 (figures in the README):
# the CUDA tests (every proxy and evaluator), the digits pipeline with trainer=gpu, the
# one-shot evaluation benchmark and the supernet benchmark in bf16. Results go to $OUT.
# Python packages the machine lacks (hydra, omegaconf, antlr4) travel in .gpu_site/.
set -uo pipefail
OUT=${OUT:-outputs/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD:$PWD/.gpu_site:${PYTHONPATH:-} PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/device.txt"
$PY -m pytest tests/test_cuda.py -q -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/cuda_tests.txt"
start=$(date +%s)
$PY train.py +experiment=digits trainer=gpu hydra.run.dir=/tmp/digits_gpu \
  trainer.enable_progress_bar=false > "$OUT/digits_gpu.log" 2>&1
echo "digits pipeline, trainer=gpu: rc $? in $(($(date +%s) - start)) s" | tee -a "$OUT/device.txt"
tail -8 "$OUT/digits_gpu.log"
cp /tmp/digits_gpu/final.json "$OUT/digits_gpu_final.json" 2>/dev/null
$PY scripts/bench_oneshot.py --device cuda --archs 20 --out "$OUT/oneshot_cuda.json" 2>&1 | tee "$OUT/oneshot_cuda.txt"
$PY scripts/bench_supernet.py --device cuda --precision bf16 --batch 64 --out "$OUT/supernet_bf16.json" 2>&1 | tail -12 | tee "$OUT/supernet_bf16.txt"
