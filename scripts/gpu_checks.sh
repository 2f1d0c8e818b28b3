#!/usr/bin/env bash
# The checks that need a GPU, in one go on a lent H100/H200 (figures in the README, "On a
# GPU"); each step has its own time limit, so one that fails or hangs costs only its share
# (the H200 needed 15-30 s per fresh process; ``bench_supernet`` starts one per variant). The
# default steps take about 10 minutes; STEPS picks others or fewer when device time is short:
#  1. the DARTS supernet's bi-level step at the paper's batch: ours (plain cuDNN ops, bf16, the
#     whole step as one CUDA graph) against the paper's network in fp32 and in bf16, same GPU,
#     same run, with each one's operations per step and kernel time per step (torch.profiler:
#     the busiest kernels in $OUT/profile_*.txt); then batch 256 and 512 (profiled);
#     space.supernet.backend=grouped at 64 and 512 (profiled); cuDNN's autotuning on
#     throughout; batch 1024 and 512 in NCHW (supernet_extra); without graphs (supernet_eager);
#  2. search epochs of +experiment=cifar10_fast through Lightning (batches on the GPU; 20
#     steps each) on CIFAR-sized synthetic images (50,000 of 32x32: the machine has no
#     network): batch 256 with the steps as CUDA graphs (search.cuda_graph; Lightning's simple
#     profiler on), batch 512 with the rates scaled, the same with backend=grouped, and eager
#     (epoch_eager, about 1.5 minutes); 4 epochs each (the recipe validates every 5th: a
#     steady epoch with validation and one without are timed); the projected 50-epoch search;
#  3. torch.compile's cudagraphs backend: its compile time and step (compile; it traced for
#     minutes);
#  4. the CUDA tests (every proxy and evaluator against the CPU, every backend under bf16,
#     the search with CUDA graphs against the eager one, plain and grouped).
# STEPS (default: all but supernet_extra, supernet_eager, epoch_eager and compile) picks
# some: supernet, supernet_more, supernet_grouped, supernet_extra, supernet_eager,
# epoch_graph, epoch_b512, epoch_grouped, epoch_eager, compile, tests. Results go to $OUT.
# Python packages the GPU machine lacks travel as wheels in .whl/ (hydra-core, omegaconf,
# antlr4-python3-runtime, torchdata; see the device notes).
set -uo pipefail
OUT=${OUT:-outputs/gpu}
mkdir -p "$OUT"
PY=${PY:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
LOG="$OUT/gpu.log"
STEPS=${STEPS:-supernet supernet_more supernet_grouped epoch_graph epoch_b512 epoch_grouped tests}
step() { # step <name> <seconds> <title> <command...>: run it under a time limit, log its tail
  local name=$1 limit=$2 title=$3 start=$(date +%s)
  shift 3
  [[ " $STEPS " == *" $name "* ]] || return 0
  echo "== $title" | tee -a "$LOG"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -12 "$OUT/$name.log" | tee -a "$LOG"
  echo "== $title: rc $rc in $(($(date +%s) - start)) s" | tee -a "$LOG"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
$PY -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$LOG"
SUPERNET="$PY scripts/bench_supernet.py --device cuda --precision bf16 --kinds bilevel --warmup 3 --steps 10"
# each variant runs in a fresh process: about 15-30 s each with start-up
step supernet 170 "bi-level step, batch 64, whole step as one CUDA graph, against the references" \
  $SUPERNET --batch 64 --graph --ops --profile "$OUT/profile_b64" --out "$OUT/supernet_b64_graph.json"
step supernet_more 100 "bi-level step, batch 256 and 512, one CUDA graph" bash -c "\
  $SUPERNET --batch 256 --graph --no-references --out $OUT/supernet_b256_graph.json && \
  $SUPERNET --batch 512 --graph --no-references --profile $OUT/profile_b512 \
    --out $OUT/supernet_b512_graph.json"
step supernet_grouped 100 "bi-level step, backend=grouped, batch 64 and 512, one CUDA graph" bash -c "\
  $SUPERNET --batch 64 --graph --no-references --backend grouped --ops \
    --out $OUT/supernet_b64_graph_grouped.json && \
  $SUPERNET --batch 512 --graph --no-references --backend grouped --profile $OUT/profile_b512_grouped \
    --out $OUT/supernet_b512_graph_grouped.json"
step supernet_extra 90 "bi-level step, one CUDA graph, batch 1024; batch 512 in NCHW" bash -c "\
  $SUPERNET --batch 1024 --graph --no-references --out $OUT/supernet_b1024_graph.json && \
  $SUPERNET --batch 512 --graph --no-references --nchw --out $OUT/supernet_b512_graph_nchw.json"
step supernet_eager 90 "bi-level step, batch 64 and 256, plain backend, eager" bash -c "\
  $SUPERNET --batch 64 --backend plain --no-references && \
  $SUPERNET --batch 256 --backend plain --no-references --out $OUT/supernet_b256_eager.json"
SYNTHETIC=(--override dataset=synthetic --override dataset.n_train=50000
  --override dataset.n_test=1000 --override dataset.image_size=32
  --override dataset.num_classes=10 --override dataset.augment=true
  --override trainer.enable_progress_bar=false
  --override trainer.limit_train_batches=20 --override trainer.limit_val_batches=4)
step epoch_graph 170 "search epochs, +experiment=cifar10_fast, steps as CUDA graphs (20 steps each)" \
  $PY scripts/bench_epoch.py "${SYNTHETIC[@]}" --override search.cuda_graph=true --epochs 4 \
  --override +trainer.profiler=simple --out "$OUT/epoch_fast_graph.json"
step epoch_b512 170 "search epochs, cifar10_fast at batch 512 (rates scaled), CUDA graphs (20 steps each)" \
  $PY scripts/bench_epoch.py "${SYNTHETIC[@]}" --override search.cuda_graph=true --epochs 4 \
  --override dataset.batch_size=512 --override search.w_lr=0.2 --override search.w_lr_min=0.008 \
  --override search.arch_lr=8.5e-4 --out "$OUT/epoch_fast_b512_graph.json"
step epoch_grouped 170 "search epochs, cifar10_fast, batch 512, backend=grouped, CUDA graphs" \
  $PY scripts/bench_epoch.py "${SYNTHETIC[@]}" --override search.cuda_graph=true --epochs 4 \
  --override space.supernet.backend=grouped --override dataset.batch_size=512 \
  --override search.w_lr=0.2 --override search.w_lr_min=0.008 --override search.arch_lr=8.5e-4 \
  --out "$OUT/epoch_fast_b512_graph_grouped.json"
step epoch_eager 150 "search epochs, +experiment=cifar10_fast, eager steps (20 steps each)" \
  $PY scripts/bench_epoch.py "${SYNTHETIC[@]}" --override search.cuda_graph=false --epochs 4 \
  --out "$OUT/epoch_fast_eager.json"
step compile 120 "bi-level step, batch 64, torch.compile cudagraphs backend (compile time)" \
  $SUPERNET --batch 64 --compile cudagraphs --no-references --warmup 4 --steps 5
step tests 150 "CUDA tests" $PY -m pytest tests/test_cuda.py -q -p no:cacheprovider
