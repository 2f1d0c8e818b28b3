"""How well each strategy's supernet ranks subnets one-shot: Kendall tau against NAS-Bench-201.

NB201 space, the real CIFAR-10 JPEGs of ``../shared/data/cifar10_jpeg`` (run
``python scripts/prepare_cifar10_jpeg.py`` first; the supernet trains on the 5k training
images, half for the weights and half for the alphas). Every row gets the same CPU budget of
training, ``--budget-minutes``: one real epoch of the row's training is timed on this machine
(data loading and validation included) and the row's epochs are the budget divided by it (a
DARTS epoch costs several single-path epochs). Rows (``--rows``):

* ``darts``, ``gdas``: the supernet of that search, scored as it is;
* ``spos-uniform``, ``spos-fair``, ``spos-sandwich``: single-path training with that sampler;
* ``default``: exactly what the default pipeline does: the experiment's search (first-order
  DARTS), then the single-path fine-tune (``finetune.*`` defaults), the budget split between
  them in the ratio of the experiment's ``search.epochs`` to ``finetune.epochs``;
* ``distinct``, ``average``, ``prune``: the ``default`` row's training with one change of
  "Evaluating Efficient Performance Estimators of Neural Architectures" (arXiv 2008.03064):
  the fine-tune draws NB201's distinct functions (``finetune.sampler=distinct``, cells scored
  by their class's representative), ends with the average of its last two epochs' weights
  (``finetune.average_epochs=2``), or trains only the space the searched supernet pruned
  (``finetune.prune=2``: 2 of 5 ops per edge dropped; the rating's one-shot scoring of 50
  archs counts in the training minutes);
* ``nas_lid``, ``gm``: a single-path supernet split ``--split-levels`` times (NAS-LID's LID
  comparison, or gradient matching), half the budget for the warm-up and half for the
  sub-supernets' fine-tunes; scored by routing each cell to its sub-supernet. The peak memory
  of the split comparisons is reported beside;
* ``hybrid``: the ``default`` row's training, scored by ``scorer=hybrid`` (one-shot
  accuracy beside the zero-cost proxies);
* ``proxy``: no training at all: ``scorer=proxy`` (zero-cost proxies of each cell's
  standalone network at initialisation, rank-aggregated); its time is the scoring's.

Every row is scored by the pipeline's ``OneShotEvaluator`` (its default calibration and
validation settings, ``oneshot.*``; or the row's ``scorer=``) on the same 100 random cells
(``--cells-seed``, default 0: the seed of ``space.sample``) and the table's top 50, and reports Kendall tau and Spearman against ``cifar10_test_200``, and the true accuracy
of its cell: the derived one for strategies with alphas, the best-scored of the random cells
for single-path rows. ``--override`` passes Hydra overrides to every row (e.g.
``oneshot.val_batches=8`` to score on more images); ``--every N`` also scores the default
row's fine-tune every N epochs (tau against fine-tune epochs, plotted next to ``--out``).
Each finished row is kept in ``<run-dir>/<row>/row.json``: a rerun with the same budget
redoes only the missing rows, and another ``--cells-seed`` only scores the kept supernets
again. ``--rescore`` trains nothing: it scores the finished rows' supernets again with other
``oneshot.*`` or ``scorer`` settings (e.g. ``--rescore oneshot.val_batches=8``, or
``--rescore scorer=hybrid`` for one-shot and zero-cost scores combined) and keeps each
setting's tau in the row's ``rescored``.

    python scripts/bench_ranking.py --out outputs/bench/ranking.json
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from bench_strategies import timed_trainer
from scipy.stats import kendalltau, spearmanr

from nas.config import register_configs
from nas.evaluate import Evaluator, NB201Table, OneShotEvaluator
from nas.files import FINETUNE_DIR, SUPERNET_FILE
from nas.io import read_json, write_json_atomic
from nas.pipeline import Run, run
from nas.search import SupernetModule

ROOT = Path(__file__).resolve().parents[1]
METRIC = "cifar10_test_200"
ROWS = {
    "darts": ["search=darts"],
    "gdas": ["search=gdas"],
    "spos-uniform": ["search=spos", "search.sampler=uniform"],
    "spos-fair": ["search=spos", "search.sampler=fair"],
    "spos-sandwich": ["search=spos", "search.sampler=sandwich"],
    "default": [],
    # the default training with de-isomorphic paths in the fine-tune, scored by representatives
    "distinct": ["finetune.sampler=distinct", "oneshot.canonical=true"],
    # the default training, the fine-tune's last two epochs' weights averaged
    "average": ["finetune.average_epochs=2"],
    # the default training, the fine-tune on the space pruned by the searched supernet
    "prune": ["finetune.prune=2"],
    # one batch and one path per op keep a split comparison near a minute on this CPU
    "nas_lid": ["search=nas_lid", "split.batches=1", "split.paths=1"],
    "gm": ["search=gm", "split.batches=1", "split.paths=1"],
    # zero-cost: no training; the scorer's proxies on standalone networks at initialisation
    "proxy": ["scorer=proxy"],
    # the default row's training, scored by one-shot accuracy and the proxies together
    "hybrid": ["scorer=hybrid"],
}
SPLIT_ROWS = ("nas_lid", "gm")
UNTRAINED_ROWS = ("proxy",)
DEFAULT_TRAINING = ("default", "distinct", "average", "prune", "hybrid")


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def scored(overrides: list[str]) -> list[str]:
    """``overrides`` with one scorer: the last ``scorer=`` among them, else ``scorer=oneshot``
    (the rows that train are scored one-shot unless they say otherwise)."""
    choice = [o for o in overrides if o.startswith("scorer=")][-1:] or ["scorer=oneshot"]
    return [*(o for o in overrides if not o.startswith("scorer=")), *choice]


def rank(evaluator: Evaluator, cells: list, truth: np.ndarray) -> dict[str, float]:
    scores = np.array([s.value for s in evaluator.evaluate(cells)])
    return {
        "kendall": float(kendalltau(scores, truth)[0]),
        "spearman": float(spearmanr(scores, truth)[0]),
        "oneshot_min": float(scores.min()),
        "oneshot_max": float(scores.max()),
        "best": int(scores.argmax()),
    }


class EpochTimer(pl.Callback):
    """Wall seconds of each training epoch, validation included."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, *_args) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, *_args) -> None:
        if not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self._start)


def epoch_seconds(base: list[str], search: list[str], probe_dir: Path) -> float:
    """Seconds of one real search epoch (data loading and validation included) of the
    config ``base`` + ``search`` here: one epoch is run and timed."""
    cfg = compose([*base, *search, "search.epochs=1", f"paths.output_dir={probe_dir}"])
    timer = EpochTimer()
    state = Run(cfg)
    dm = state.datamodule
    module = SupernetModule.from_config(cfg, dm.num_classes, dm.in_channels)
    timed_trainer(timer, num_sanity_val_steps=0).fit(module, datamodule=state.datamodule)
    return timer.seconds[0]


def row_overrides(name: str, base: list[str], budget_s: float, probe_dir: Path, levels: int):
    """The overrides of row ``name`` with its epochs fitted to the budget, and its epochs.

    A split row spends half the budget on the single-path warm-up and half on fine-tuning
    the ``2 + 4 + ... + 2**levels`` sub-supernets its ``levels`` create (the comparisons
    that choose the splits are not training: their time is reported apart)."""
    if name in SPLIT_ROWS:
        per_epoch = epoch_seconds(base, ROWS[name], probe_dir / name)
        warm = max(1, math.floor(budget_s / 2 / per_epoch))
        trainings = 2 ** (levels + 1) - 2
        each = max(1, math.floor(budget_s / 2 / per_epoch / trainings))
        overrides = [*ROWS[name], f"search.epochs={warm}", f"split.levels={levels}"]
        return [*overrides, f"split.epochs={each}"], {"search": warm, "split": each}
    if name not in DEFAULT_TRAINING:
        per_epoch = epoch_seconds(base, ROWS[name], probe_dir / name)
        epochs = max(1, math.floor(budget_s / per_epoch))
        return [*ROWS[name], f"search.epochs={epochs}", "finetune.epochs=0"], {"search": epochs}
    cfg = compose(base)
    s, f = cfg.search.epochs, cfg.finetune.epochs
    search_s = budget_s * s / (s + f)
    single_path = ["search=spos", f"search.sampler={cfg.finetune.sampler}"]
    per_search = epoch_seconds(base, [], probe_dir / "default_search")
    per_finetune = epoch_seconds(base, single_path, probe_dir / "default_finetune")
    epochs = {
        "search": max(1, math.floor(search_s / per_search)),
        "finetune": max(1, math.floor((budget_s - search_s) / per_finetune)),
    }
    trained = [f"search.epochs={epochs['search']}", f"finetune.epochs={epochs['finetune']}"]
    return [*ROWS[name], *trained], epochs


def every_n_epochs(n: int) -> list[str]:
    """Overrides that keep a checkpoint every ``n`` epochs (of the fine-tune, in its dir)."""
    return [
        "+callbacks.every._target_=pytorch_lightning.callbacks.ModelCheckpoint",
        f"+callbacks.every.every_n_epochs={n}",
        "+callbacks.every.save_top_k=-1",
        "+callbacks.every.filename='epoch-{epoch:03d}'",
        "+callbacks.every.auto_insert_metric_name=false",
    ]


def finetune_curve(
    state: Run, cells: list, truth: np.ndarray, final_tau: float, epochs: int
) -> list[tuple[int, float]]:
    """Kendall tau after 0 fine-tune epochs (the searched supernet) and at every kept
    fine-tune checkpoint; the last point is the row's own tau."""
    calib, val = state.evaluator.calib, state.evaluator.val

    def tau(path: Path) -> float:
        module = SupernetModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
        scores = [
            s.value for s in OneShotEvaluator(module.supernet.eval(), calib, val).evaluate(cells)
        ]
        return float(kendalltau(scores, truth)[0])

    curve = [(0, tau(state.path(SUPERNET_FILE)))]
    for ckpt in sorted((state.path(FINETUNE_DIR) / "checkpoints").glob("epoch-*.ckpt")):
        epoch = int(ckpt.stem.split("-")[1]) + 1
        if epoch < epochs:
            curve.append((epoch, tau(ckpt)))
    return [*curve, (epochs, final_tau)]


def plot_curve(curve: list, out: Path) -> None:
    """Kendall tau against fine-tune epochs, as a PNG (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*curve, strict=True), marker="o")
    ax.set(xlabel="single-path fine-tune epochs", ylabel="Kendall τ vs NB201")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def rescore(args: argparse.Namespace, base: list[str], cells: list, truth: np.ndarray) -> int:
    """Score each finished row of ``args.rows`` again with the ``args.rescore`` overrides."""
    setting = " ".join(args.rescore)
    print(f"rescored with {setting}: {args.cells} random cells (seed {args.cells_seed}); {METRIC}")
    print("| row | Kendall τ (row) | Kendall τ (rescored) | Spearman | one-shot range |")
    print("|---|---|---|---|---|")
    for name in args.rows:
        row_dir = args.run_dir / name
        done = row_dir / "row.json"
        if not done.exists():
            print(f"{name}: no finished row in {row_dir}, skipped", file=sys.stderr)
            continue
        row = read_json(done)
        if row.get("cells_seed", 0) != args.cells_seed:
            print(
                f"{name}: ranked other cells; run it with this --cells-seed first", file=sys.stderr
            )
            continue
        if row.get("overrides", []) != args.override:
            print(
                f"{name}: trained with --override {row.get('overrides', [])}, not "
                f"{args.override}: pass the same to rescore it; skipped",
                file=sys.stderr,
            )
            continue
        cfg = compose(scored([*base, *ROWS[name], *args.rescore, f"paths.output_dir={row_dir}"]))
        r = rank(Run(cfg).evaluator, cells, truth)
        write_json_atomic(done, {**row, "rescored": {**row.get("rescored", {}), setting: r}})
        print(
            f"| {name} | {row['kendall']:.3f} | {r['kendall']:.3f} | {r['spearman']:.3f} "
            f"| {r['oneshot_min']:.1f}–{r['oneshot_max']:.1f} |",
            flush=True,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--budget-minutes", type=float, default=6.0, help="training per row")
    p.add_argument("--cells", type=int, default=100)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--run-dir", type=Path, default=ROOT / "outputs" / "bench" / "ranking_runs")
    p.add_argument("--override", action="append", default=[], help="a Hydra override (repeatable)")
    p.add_argument(
        "--every", type=int, default=0, help="default row: also score every N fine-tune epochs"
    )
    p.add_argument(
        "--split-levels", type=int, default=2, help="nas_lid and gm rows: 2-way split levels"
    )
    p.add_argument(
        "--rescore",
        action="append",
        default=[],
        help="a oneshot.* or scorer override (repeatable): score the finished rows again with "
        "it, no training",
    )
    p.add_argument("--cells-seed", type=int, default=0, help="which random cells are ranked")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.budget_minutes <= 0 or args.cells < 2 or args.top < 0 or args.every < 0:
        p.error("--budget-minutes must be > 0, --cells >= 2, --top >= 0, --every >= 0")
    if any(not o.startswith(("oneshot.", "scorer")) for o in args.rescore):
        p.error(f"--rescore takes oneshot.* and scorer overrides only, got {args.rescore}")
    base = [
        "+experiment=nb201_cifar10",
        "dataset=imagefolder",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=none",
        *args.override,
    ]
    table = NB201Table()
    rng = random.Random(args.cells_seed)
    space = Run(compose([*base, f"paths.output_dir={args.run_dir / 'probe'}"])).space
    cells = [space.sample(rng) for _ in range(args.cells)]
    truth = np.array([table.value(c, METRIC) for c in cells])
    order = np.argsort(-table.column(METRIC))[: args.top]
    top = [space.from_str(table.arch_strs[i]) for i in order]
    top_truth = np.array([table.value(c, METRIC) for c in top])

    if args.rescore:
        return rescore(args, base, cells, truth)
    budget_s = 60 * args.budget_minutes
    rows: dict[str, dict] = {}
    for name in args.rows:
        row_dir = args.run_dir / name
        done = row_dir / "row.json"
        setting = {"budget_minutes": args.budget_minutes, "overrides": args.override}
        if name in SPLIT_ROWS:
            setting["split_levels"] = args.split_levels
        trained = done.exists() and all(read_json(done).get(k) == v for k, v in setting.items())
        if trained and read_json(done).get("cells_seed", 0) == args.cells_seed:
            rows[name] = read_json(done)  # a finished row of this setting: not redone
            continue
        if name in UNTRAINED_ROWS:
            overrides, epochs, stages = ROWS[name], {}, "[]"
        else:
            overrides, epochs = row_overrides(
                name, base, budget_s, args.run_dir / "probe", args.split_levels
            )
            stages = "[search,derive]"
            if name in DEFAULT_TRAINING:
                stages = "[search,derive,finetune]"
            elif name in SPLIT_ROWS:
                stages = "[search,derive,split]"
        if name == "default" and args.every:
            overrides += every_n_epochs(args.every)
        cfg = compose(
            scored([*base, *overrides, f"stages={stages}", f"paths.output_dir={row_dir}"])
        )
        if trained:  # the kept supernet ranks other cells: score again, no training
            r = {k: read_json(done)[k] for k in ("epochs", "train_seconds")}
        else:
            if row_dir.exists():  # an unfinished row (its epochs may differ): start it over
                shutil.rmtree(row_dir)
            start = time.perf_counter()
            if name not in UNTRAINED_ROWS:
                run(cfg)
            r = {"epochs": epochs, "train_seconds": time.perf_counter() - start}
        state = Run(cfg)
        start = time.perf_counter()
        r.update(rank(state.evaluator, cells, truth))
        r["score_seconds"] = time.perf_counter() - start
        if top:
            r["kendall_top"] = rank(state.evaluator, top, top_truth)["kendall"]
        derived = read_json(state.path("derived.json")) if stages != "[]" else {"arch": None}
        cell = cells[r["best"]] if derived["arch"] is None else state.space.from_json(derived)
        r["cell"] = state.space.to_str(cell)
        if name in SPLIT_ROWS:
            tree = read_json(state.path("splits.json"))
            r.update(split_peak_mb=max(tree["peak_mb"]), leaves=len(tree["leaves"]))
        r["cell_accuracy"] = table.value(cell, METRIC)
        if name == "default" and args.every:
            r["curve"] = finetune_curve(state, cells, truth, r["kendall"], epochs["finetune"])
        r.update(setting, cells_seed=args.cells_seed)
        write_json_atomic(done, r)
        rows[name] = r
        print(
            f"{name}: epochs {r['epochs']}, {r['train_seconds'] / 60:.1f} min, tau "
            f"{r['kendall']:.3f}, cell {r['cell_accuracy']:.2f}",
            file=sys.stderr,
            flush=True,
        )

    print(
        f"budget: {args.budget_minutes:g} min of training per row (2 cores); "
        f"{args.cells} random cells (seed {args.cells_seed}) and the table's top {args.top}; "
        f"{METRIC}"
    )
    print(
        "| row | epochs | Kendall τ | Spearman | Kendall τ (top) | one-shot range | cell acc "
        "| split peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        ep = " + ".join(str(v) for v in r["epochs"].values()) or "0"
        peak = f"{r['split_peak_mb']:.0f}" if "split_peak_mb" in r else "—"
        print(
            f"| {name} | {ep} | {r['kendall']:.3f} | {r['spearman']:.3f} "
            f"| {r.get('kendall_top', float('nan')):.3f} "
            f"| {r['oneshot_min']:.1f}–{r['oneshot_max']:.1f} | {r['cell_accuracy']:.2f} | {peak} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            args.out,
            {
                "budget": {
                    "minutes_per_row": args.budget_minutes,
                    "images": "cifar10_jpeg 5k train (2.5k weights, 2.5k arch)",
                    "cells": args.cells,
                    "cells_seed": args.cells_seed,
                    "top": args.top,
                    "overrides": args.override,
                    "epochs": {n: r["epochs"] for n, r in rows.items()},
                    "train_seconds": {n: r["train_seconds"] for n, r in rows.items()},
                },
                "kendall": {n: r["kendall"] for n, r in rows.items()},
                "kendall_top": {n: r.get("kendall_top") for n, r in rows.items()},
                "derived_accuracy": {n: r["cell_accuracy"] for n, r in rows.items()},
                "split_peak_mb": {
                    n: r["split_peak_mb"] for n, r in rows.items() if "split_peak_mb" in r
                },
            },
        )
        curve = rows.get("default", {}).get("curve")
        if curve:
            plot_curve(curve, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
