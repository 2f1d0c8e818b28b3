"""Hardware-aware search on NAS-Bench-201: how many queries each search needs to find the
accuracy/latency front.

A tabular benchmark: the queries are simulated. Each search asks for ``cifar10_test_200``
through ``TabularEvaluator`` (one query per lookup) and knows each cell's latency on the
device from HELP's measured table (``nb201_latency_help.csv.gz``, one column per device),
which stands in for the lookup table a run measures on its own device. For each device column
the true front is computed from all 15,625 cells; each search's front after its first ``b``
queries is scored by its hypervolume relative to the true front's (two minimised objectives:
the negated accuracy and the latency; reference point: chance accuracy, 10 %, and the
device's slowest cell). Per device and search: the median ratio over seeds at each of
``--checkpoints`` and the median number of queries to reach ``--target`` (``null`` when a seed
does not within ``--budget``; the median is then taken with those seeds counted as never).

Searches: ``random`` (uniform), ``nsga2`` (``nas.evolution.nsga2``) and ``refine`` (the
Delta-NAS refiner with ``costs``: parents in NSGA-II's order, candidates ranked by the
hypervolume their predicted accuracy would add; ``refine.*`` defaults, the delta predictor).

    python scripts/bench_pareto.py --seeds 20 --out outputs/bench/pareto.json

``--out`` writes JSON: ``devices``, ``budget``, ``seeds``, ``target``, ``checkpoints`` and
``results`` (``{device: {search: {"ratio_at": {b: median}, "queries_to_target": median,
"per_seed": [...]}}}``).
"""

from __future__ import annotations

import argparse
import random
import statistics
from pathlib import Path

import numpy as np

from nas.evaluate import NB201Table
from nas.evaluate.tabular import TabularEvaluator
from nas.evolution import Tracker, nsga2, random_search, refine
from nas.evolution.pareto import hypervolume_2d, non_dominated_fronts
from nas.io import write_json_atomic
from nas.predictor import DeltaPredictor, TrainConfig

METRIC = "cifar10_test_200"
#: a GPU at batch 1, a server CPU, a phone, an FPGA: devices of different kinds
DEVICES = ("titan_rtx_1", "gold_6240", "pixel3", "fpga")
CHANCE = 10.0  # % on CIFAR-10: the reference point's accuracy


def curve(points: np.ndarray, reference: tuple[float, float], true_hv: float) -> list[float]:
    """The hypervolume ratio of the first ``b`` points, for every ``b`` (incrementally)."""
    out, front = [], np.empty((0, 2))
    for p in points:
        front = np.vstack([front, p])
        front = front[non_dominated_fronts(front)[0]]
        out.append(hypervolume_2d(front, reference) / true_hv)
    return out


def run_search(name: str, table: NB201Table, latency: np.ndarray, budget: int, seed: int):
    evaluator = TabularEvaluator(METRIC, table=table)

    def costs(arch) -> tuple[float]:
        return (float(latency[table.row(arch)]),)

    rng = random.Random(seed)
    if name == "random":
        run: Tracker = random_search(evaluator, budget, rng)
    elif name == "nsga2":
        run = nsga2(evaluator, costs, budget, rng)
    else:
        train = TrainConfig(seed=seed)
        run = refine(evaluator, budget, rng, lambda s: DeltaPredictor(s, train), costs=costs)
    return np.array([(-e.rank, costs(e.arch)[0]) for e in run.history])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", nargs="+", default=list(DEVICES))
    p.add_argument("--searches", nargs="+", default=["random", "nsga2", "refine"])
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100, 200, 300])
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    table = NB201Table(args.data_dir)
    accuracy = table.column(METRIC)
    results: dict[str, dict] = {}
    print(
        f"hypervolume of the found front / the true front's ({METRIC} vs latency), "
        f"median over {args.seeds} seeds; simulated queries (NAS-Bench-201 table)"
    )
    header = " | ".join(f"at {b}" for b in args.checkpoints)
    print(f"| device | search | {header} | queries to {args.target} |")
    print("|---|---|" + "---:|" * (len(args.checkpoints) + 1))
    for device in args.devices:
        latency = table.column(device)
        ok = ~np.isnan(accuracy) & ~np.isnan(latency)
        reference = (-CHANCE, float(np.nanmax(latency)))
        true_hv = hypervolume_2d(np.column_stack([-accuracy[ok], latency[ok]]), reference)
        results[device] = {}
        for name in args.searches:
            per_seed = []
            for seed in range(args.seeds):
                ratios = curve(
                    run_search(name, table, latency, args.budget, seed), reference, true_hv
                )
                reached = next((i + 1 for i, r in enumerate(ratios) if r >= args.target), None)
                per_seed.append({"ratios": ratios, "queries_to_target": reached})
            at = {
                b: statistics.median(s["ratios"][min(b, len(s["ratios"])) - 1] for s in per_seed)
                for b in args.checkpoints
            }
            to_target = statistics.median(s["queries_to_target"] or float("inf") for s in per_seed)
            results[device][name] = {
                "ratio_at": at,
                "queries_to_target": None if to_target == float("inf") else to_target,
                "per_seed": [s["queries_to_target"] for s in per_seed],
            }
            cells = " | ".join(f"{at[b]:.4f}" for b in args.checkpoints)
            shown = "never" if to_target == float("inf") else f"{to_target:.0f}"
            print(f"| {device} | {name} | {cells} | {shown} |", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            args.out,
            {
                "devices": args.devices,
                "budget": args.budget,
                "seeds": args.seeds,
                "target": args.target,
                "checkpoints": args.checkpoints,
                "results": results,
            },
        )


if __name__ == "__main__":
    main()
