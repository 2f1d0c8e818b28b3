"""How well a supernet ranks subnets one-shot: Kendall tau against NAS-Bench-201.

NB201 space, the real CIFAR-10 JPEGs of ``../shared/data/cifar10_jpeg`` (run
``python scripts/prepare_cifar10_jpeg.py`` first; the supernet trains on the 5k training
images, half for the weights and half for the alphas), one CPU budget for every row
(``--epochs`` of search, ``--finetune-epochs`` of single-path fine-tune). Rows:

* ``darts``: the supernet of a first-order DARTS search, scored as it is;
* ``default``: exactly what the default pipeline does: the same search, then the
  single-path fine-tune (``finetune.*`` defaults), then ``OneShotEvaluator`` with the
  pipeline's default calibration and validation settings (``oneshot.*``).

Each row scores the same 100 random cells (seed 0) and the table's top 50 and reports Kendall
tau and Spearman against ``cifar10_test_200``, and the true accuracy of the derived cell. The
``default`` row is also scored after every ``--every`` fine-tune epochs (tau vs fine-tune
epochs, plotted). Rows and settings: ``--override`` passes Hydra overrides to every run.

    python scripts/bench_ranking.py --out outputs/bench/ranking.json
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nas.config import register_configs
from nas.evaluate import NB201Table, OneShotEvaluator
from nas.files import FINETUNE_DIR, SUPERNET_FILE
from nas.io import read_json, write_json_atomic
from nas.pipeline import Run, run
from nas.search import SupernetModule

ROOT = Path(__file__).resolve().parents[1]
METRIC = "cifar10_test_200"


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def rank(evaluator: OneShotEvaluator, cells: list, truth: np.ndarray) -> dict[str, float]:
    scores = np.array([s.value for s in evaluator.evaluate(cells)])
    return {
        "kendall": float(kendalltau(scores, truth)[0]),
        "spearman": float(spearmanr(scores, truth)[0]),
        "oneshot_min": float(scores.min()),
        "oneshot_max": float(scores.max()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="search epochs")
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--every", type=int, default=5, help="score the fine-tune every N epochs")
    p.add_argument("--cells", type=int, default=100)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--run-dir", type=Path, default=ROOT / "outputs" / "bench" / "ranking_run")
    p.add_argument("--override", action="append", default=[], help="a Hydra override (repeatable)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if min(args.epochs, args.finetune_epochs, args.every, args.cells) < 1 or args.top < 0:
        p.error("--epochs, --finetune-epochs, --every and --cells must be >= 1, --top >= 0")
    overrides = [
        "+experiment=nb201_cifar10",
        "dataset=imagefolder",
        f"search.epochs={args.epochs}",
        f"finetune.epochs={args.finetune_epochs}",
        "stages=[search,derive,finetune]",
        f"paths.output_dir={args.run_dir}",
        "trainer.enable_progress_bar=false",
        "logger=none",
        "+callbacks.every._target_=pytorch_lightning.callbacks.ModelCheckpoint",
        f"+callbacks.every.every_n_epochs={args.every}",
        "+callbacks.every.save_top_k=-1",
        "+callbacks.every.filename='epoch-{epoch:03d}'",
        "+callbacks.every.auto_insert_metric_name=false",
        *args.override,
    ]
    cfg = compose(overrides)
    start = time.perf_counter()
    run(cfg)
    train_seconds = time.perf_counter() - start
    state = Run(cfg)
    table = NB201Table()
    rng = random.Random(0)
    cells = [state.space.sample(rng) for _ in range(args.cells)]
    truth = np.array([table.value(c, METRIC) for c in cells])
    order = np.argsort(-table.column(METRIC))[: args.top]
    top = [state.space.from_str(table.arch_strs[i]) for i in order] if args.top else []
    top_truth = np.array([table.value(c, METRIC) for c in top])
    calib, val = state.evaluator.calib, state.evaluator.val

    def evaluator_of(path: Path) -> OneShotEvaluator:
        module = SupernetModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
        return OneShotEvaluator(module.supernet.eval(), calib, val)

    derived = state.space.from_json(read_json(state.path("derived.json")))
    rows: dict[str, dict[str, float]] = {}
    curve: list[tuple[int, float]] = []
    for name, path in (("darts", state.path(SUPERNET_FILE)), ("default", None)):
        ev = state.evaluator if path is None else evaluator_of(path)
        rows[name] = rank(ev, cells, truth)
        if top:
            rows[name]["kendall_top"] = rank(ev, top, top_truth)["kendall"]
    curve.append((0, rows["darts"]["kendall"]))
    for ckpt in sorted((state.path(FINETUNE_DIR) / "checkpoints").glob("epoch-*.ckpt")):
        epoch = int(ckpt.stem.split("-")[1]) + 1
        tau = (
            rows["default"]["kendall"]
            if epoch == args.finetune_epochs
            else rank(evaluator_of(ckpt), cells, truth)["kendall"]
        )
        curve.append((epoch, tau))
    derived_acc = table.value(derived, METRIC)
    budget = {
        "search_epochs": args.epochs,
        "finetune_epochs": args.finetune_epochs,
        "train_seconds": train_seconds,
        "images": "cifar10_jpeg 5k train (2.5k weights, 2.5k arch)",
        "cells": args.cells,
        "top": args.top,
        "overrides": args.override,
    }
    print(
        f"budget: {args.epochs} search + {args.finetune_epochs} fine-tune epochs, "
        f"{train_seconds / 60:.1f} min of training (2 cores)"
    )
    print(
        f"| row | Kendall τ ({args.cells} random) | Spearman | Kendall τ (top {args.top}) | one-shot range |"
    )
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['kendall']:.3f} | {r['spearman']:.3f} | {r.get('kendall_top', float('nan')):.3f} "
            f"| {r['oneshot_min']:.1f}–{r['oneshot_max']:.1f} |"
        )
    print("fine-tune epochs -> Kendall τ: " + ", ".join(f"{e}: {t:.3f}" for e, t in curve))
    print(f"derived cell {state.space.to_str(derived)}: {derived_acc:.2f} ({METRIC})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            args.out,
            {
                "budget": budget,
                "kendall": {
                    **{n: r["kendall"] for n, r in rows.items()},
                    **{f"default@{e}": t for e, t in curve},
                },
                "kendall_top": {n: r.get("kendall_top") for n, r in rows.items()},
                "derived_accuracy": {n: derived_acc for n in rows},
            },
        )
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.plot(*zip(*curve, strict=True), marker="o")
            ax.set(
                xlabel="single-path fine-tune epochs",
                ylabel="Kendall τ vs NB201",
                title=f"one-shot ranking after {args.epochs} DARTS epochs",
            )
            fig.tight_layout()
            fig.savefig(args.out.with_suffix(".png"), dpi=110)
        except ImportError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
