"""The product metric: the true accuracy of the architecture the whole pipeline hands a user.

Runs ``python train.py +experiment=nb201_cifar10 dataset=imagefolder`` (the real CIFAR-10
JPEGs of ``../shared/data/cifar10_jpeg``; run ``python scripts/prepare_cifar10_jpeg.py``
first) once per seed, each in ``<run-dir>/<label>/seed<S>``, with the ``--override`` Hydra
overrides (e.g. ``search.epochs=3``, ``search=training_free``). Only after a run has ended is
its ``final.json`` arch looked up in NAS-Bench-201: its ``cifar10_test_200`` accuracy and rank
among the 15,625 cells. Nothing from the table enters the run: it measures, it never scores.
Reports per seed the accuracy, rank, wall seconds and the scorer's queries, and the median
over seeds. A finished seed (``row.json``) is not run again.

    python scripts/bench_pipeline.py --seeds 1 2 3 4 5 --override search=training_free \\
        --out outputs/bench/pipeline_training_free.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nas.evaluate import NB201Table
from nas.io import read_json, write_json_atomic
from nas.spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
METRIC = "cifar10_test_200"
BASE = ("+experiment=nb201_cifar10", "dataset=imagefolder", "trainer.enable_progress_bar=false")


def run_seed(run_dir: Path, seed: int, overrides: list[str]) -> dict:
    """One ``train.py`` run (or its kept ``row.json``): final arch, wall seconds, queries."""
    done = run_dir / "row.json"
    if done.exists() and read_json(done)["overrides"] == overrides:
        return read_json(done)
    cmd = [
        sys.executable,
        "train.py",
        *BASE,
        *overrides,
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    final = read_json(run_dir / "final.json")
    row = {
        "seed": seed,
        "overrides": overrides,
        "arch": final["arch"],
        "score": final["score"],
        "scorer": final["scorer"],
        "queries": final["queries"],
        "seconds": seconds,
    }
    write_json_atomic(done, row)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--override", action="append", default=[], help="a Hydra override (repeatable)")
    p.add_argument("--label", default=None, help="the runs' folder name (default: the overrides)")
    p.add_argument("--run-dir", type=Path, default=ROOT / "outputs" / "bench" / "pipeline_runs")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    label = args.label or re.sub(r"[^A-Za-z0-9_.]+", "-", "_".join(args.override)) or "default"
    table = NB201Table()
    column = table.column(METRIC)
    space = get_space("nb201")
    rows = []
    for seed in args.seeds:
        row = run_seed(args.run_dir / label / f"seed{seed}", seed, args.override)
        accuracy = table.value(space.from_str(row["arch"]), METRIC)  # after the run: measured
        row.update(accuracy=accuracy, rank=int(np.sum(column > accuracy)) + 1)
        rows.append(row)
        print(
            f"seed {seed}: {accuracy:.2f} (rank {row['rank']}), {row['seconds'] / 60:.1f} min",
            file=sys.stderr,
            flush=True,
        )
    median = {
        key: statistics.median(r[key] for r in rows) for key in ("accuracy", "rank", "seconds")
    }
    print(f"pipeline: {' '.join([*BASE, *args.override])}; {METRIC} of the final arch")
    print("| seed | accuracy | rank of 15,625 | minutes | queries | arch |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['accuracy']:.2f} | {r['rank']} | {r['seconds'] / 60:.1f} "
            f"| {r['queries']} | `{r['arch']}` |"
        )
    print(
        f"| median | {median['accuracy']:.2f} | {median['rank']:g} | "
        f"{median['seconds'] / 60:.1f} | | |"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            args.out,
            {
                "overrides": [*BASE, *args.override],
                "runs": rows,
                "median_accuracy": median["accuracy"],
                "median_rank": median["rank"],
                "median_seconds": median["seconds"],
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
