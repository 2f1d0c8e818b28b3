"""The cost of one search step of each strategy, relative to first-order DARTS.

Same config for every strategy (default: CPU, DARTS space, C=16, 8 cells, batch 64 of 32x32
images, 10 classes): ``SupernetModule.training_step`` as the search runs it, driven by a
Lightning Trainer on fixed random batches, the architecture step included (no warm-up;
``pcdarts`` with 4 partial channels as ``conf/search/pcdarts.yaml`` sets). Each strategy runs
in a fresh process, so that its peak memory is its own: the peak resident set size reached
during the steps minus the resident set before them (the step's working memory). Time is
the median over the timed steps after ``--warmup`` untimed ones. Run it alone: two torch
jobs on a small machine slow each other down.

    python scripts/bench_strategies.py --out outputs/bench/strategies.json

``--out`` writes ``{"step_cost_vs_darts": {name: ratio}, "peak_memory_vs_darts": {name: ratio}}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from nas.config import SearchConfig
from nas.memory import PeakMemory
from nas.search import SupernetModule

STRATEGIES = (
    "darts",
    "darts2",
    "gdas",
    "pcdarts",
    "fairdarts",
    "drnas",
    "betadarts",
    "spos-uniform",
    "spos-sandwich",
)


class StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *_args) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *_args) -> None:
        self.times.append(time.perf_counter() - self._start)


def build_module(name: str, args: argparse.Namespace) -> SupernetModule:
    strategy, _, sampler = name.partition("-")
    search = OmegaConf.to_container(OmegaConf.structured(SearchConfig))
    search.update(strategy=strategy, epochs=1, arch_warmup_epochs=0, sampler=sampler or "uniform")
    if strategy == "betadarts":
        search["beta_weight"] = 1.0
    supernet = {"c": args.c, "layers": args.layers}
    if strategy == "pcdarts":
        supernet["partial_channels"] = 4
    return SupernetModule({"name": "darts", "supernet": supernet}, search, args.classes, 3)


def timed_trainer(timer: pl.Callback, **flags) -> pl.Trainer:
    """A one-epoch CPU Trainer with ``timer`` and no logger, checkpoints, progress bar or
    model summary; ``flags``: more Trainer flags."""
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        **flags,
    )


def time_steps(
    module: SupernetModule,
    batch_size: int,
    size: int,
    classes: int,
    warmup: int = 1,
    steps: int = 3,
    channels: int = 3,
) -> float:
    """Median seconds of ``module``'s training step (Lightning-driven, CPU) on fixed random
    ``[batch_size, channels, size, size]`` batches, after ``warmup`` untimed steps."""
    g = torch.Generator().manual_seed(1)

    def images() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(batch_size, channels, size, size, generator=g)
        return x, torch.randint(0, classes, (batch_size,), generator=g)

    batch = {"train": images(), "arch": images()}
    loader = DataLoader([batch] * (warmup + steps), batch_size=None)
    timer = StepTimer()
    timed_trainer(timer, limit_val_batches=0).fit(module, train_dataloaders=loader)
    return statistics.median(timer.times[warmup:])


def measure(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Seconds per step and the step's peak working memory of strategy ``name``, here."""
    torch.manual_seed(0)
    module = build_module(name, args)
    with PeakMemory(torch.device("cpu")) as peak:
        step_s = time_steps(module, args.batch, args.size, args.classes, args.warmup, args.steps)
    return {"step_s": step_s, "peak_mem_mb": peak.mb}


def measure_in_fresh_process(name: str, argv: list[str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, *argv, "--worker", name]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--c", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    argv = [a for a in sys.argv[1:]]
    names = ["darts", *[s for s in args.strategies if s != "darts"]]
    results = {}
    for name in names:
        results[name] = measure_in_fresh_process(name, argv)
        print(f"measured {name}: {results[name]}", file=sys.stderr, flush=True)
    base = results["darts"]
    cost = {n: r["step_s"] / base["step_s"] for n, r in results.items()}
    memory = {n: r["peak_mem_mb"] / base["peak_mem_mb"] for n, r in results.items()}
    print(
        f"CPU, DARTS space C={args.c}, {args.layers} cells, batch {args.batch} of "
        f"{args.size}x{args.size}; median of {args.steps} steps after {args.warmup}"
    )
    print(f"{'strategy':<16}{'s/step':>9}{'vs darts':>10}{'peak MB':>10}{'vs darts':>10}")
    for n, r in results.items():
        print(
            f"{n:<16}{r['step_s']:>9.2f}{cost[n]:>10.2f}{r['peak_mem_mb']:>10.0f}{memory[n]:>10.2f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"step_cost_vs_darts": cost, "peak_memory_vs_darts": memory}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
