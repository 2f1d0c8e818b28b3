"""Search benchmark on the NAS-Bench-201 table: random search, regularized evolution, and the
Delta-NAS refiner (with and without zero-cost pre-screening) guided by each predictor of
``--predictors`` (``delta``, ``absolute``, or ``none``: candidates in random order, the
ablation that isolates the predictor's share), over many seeds, on each of ``--datasets``.

Metric: 200-epoch test accuracy; one table lookup = one query. ``--noise S ...`` repeats every
row with Gaussian noise of standard deviation S (accuracy points) added to every score a
search sees, fixed per seed and arch (a re-query returns the same value, as a one-shot score
does); the reported figures always use the true values. Reports, per row, the best-so-far
true accuracy after 25/50/100/150/200/300 queries (mean ± std over seeds), the queries needed
to query the table's best cell (median, and the share of seeds that did) and the wall time
per seed; ``--out`` writes them as JSON and ``--plot`` the mean regret curves.

    python scripts/bench_search.py --datasets cifar10 cifar100 imagenet16 \\
        --predictors delta absolute none --noise 0 0.5 1 2 --out outputs/bench/search.json
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.evaluate.base import Score
from nas.evaluate.tabular import NB201Table, TabularEvaluator
from nas.evolution import (
    RefineConfig,
    Tracker,
    random_search,
    refine,
    regularized_evolution,
)
from nas.io import write_json_atomic
from nas.predictor import PREDICTORS, TrainConfig
from nas.spaces import Arch

METRICS = {
    "cifar10": "cifar10_test_200",
    "cifar100": "cifar100_test_200",
    "imagenet16": "imagenet16_test_200",
}
ALGORITHMS = ("random", "regularized", "refine", "refine+proxy")
PREDICTOR_CHOICES = (*sorted(PREDICTORS), "none")
CHECKPOINTS = (25, 50, 100, 150, 200, 300)
OPT_TOL = 1e-9  # a query within this of the table's maximum has found the optimum

Search = Callable[[TabularEvaluator, int, random.Random], Tracker]


def make_searches(args: argparse.Namespace, table: NB201Table) -> dict[str, Search]:
    """Each row as ``search(evaluator, budget, rng) -> Tracker``: ``random``, ``regularized``,
    and ``refine/<predictor>``, ``refine+proxy/<predictor>`` for every ``--predictors``."""
    cfg = RefineConfig(
        init_size=args.init_size,
        parents=args.parents,
        mutations=args.mutations,
        q=args.q,
        explore=args.explore,
        prescreen_keep=args.prescreen_keep,
        prescreen_pool=args.prescreen_pool,
        restart=args.restart,
        restart_size=args.restart_size,
        smooth=args.smooth,
    )
    proxy = TabularEvaluator(args.proxy, table=table, source=f"proxy:{args.proxy}")

    def refiner(with_proxy: bool, predictor: str) -> Search:
        def search(ev: TabularEvaluator, budget: int, rng: random.Random) -> Tracker:
            seed = rng.randrange(2**31)
            make = PREDICTORS.get(predictor)
            return refine(
                ev,
                budget,
                rng,
                lambda space: make(space, TrainConfig(seed=seed)) if make else None,
                cfg=cfg,
                prescreen=proxy if with_proxy else None,
            )

        return search

    searches: dict[str, Search] = {}
    for name in args.algorithms:
        if name == "random":
            searches[name] = lambda ev, budget, rng: random_search(ev, budget, rng)
        elif name == "regularized":
            searches[name] = lambda ev, budget, rng: regularized_evolution(
                ev, budget, rng, population_size=args.population, sample_size=args.sample_size
            )
        else:
            for predictor in args.predictors:
                searches[f"{name}/{predictor}"] = refiner(name == "refine+proxy", predictor)
    return searches


JSON_KEYS = ("queries_to_optimum_median", "found_share", "best_at")


def summarise(traces: list[list[float]], optimum: float, budget: int, walls: list[float]) -> dict:
    """Best-so-far statistics of one algorithm's per-seed score traces."""
    best = [[max(t[: n + 1]) for n in range(len(t))] for t in traces]
    points = [n for n in CHECKPOINTS if n <= budget]
    hits = [
        next((n + 1 for n, b in enumerate(bs) if b >= optimum - OPT_TOL), math.inf) for bs in best
    ]
    median = statistics.median(hits)
    return {
        "queries_to_optimum_median": None if math.isinf(median) else median,
        "found_share": sum(not math.isinf(h) for h in hits) / len(hits),
        "best_at": {str(n): statistics.fmean(bs[n - 1] for bs in best) for n in points},
        "best_at_std": {str(n): statistics.pstdev(bs[n - 1] for bs in best) for n in points},
        "mean_regret": [statistics.fmean(optimum - bs[n] for bs in best) for n in range(budget)],
        "wall_seconds_per_seed": statistics.fmean(walls),
    }


class _Found(Exception):
    """Raised by :class:`StopAtOptimum` once the table's best cell has been queried."""


class StopAtOptimum(TabularEvaluator):
    """The benchmark's evaluator: records every queried true value and, unless ``full``, ends
    the run once the optimum is queried (no reported number can change after that point).
    The search sees each value plus Gaussian noise of std ``noise``, drawn once per arch from
    ``seed`` (so a re-query repeats it)."""

    def __init__(
        self,
        metric: str,
        table: NB201Table,
        optimum: float,
        full: bool,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(metric, table=table)
        self.optimum, self.full, self.noise, self.seed = optimum, full, noise, seed
        self.trace: list[float] = []

    def _seen(self, arch: Arch, value: float) -> float:
        if not self.noise or not math.isfinite(value):
            return value
        return value + random.Random(f"{self.seed}:{arch}").gauss(0.0, self.noise)

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        scores = super().evaluate(archs)
        self.trace += [s.value for s in scores]
        if not self.full and max(self.trace) >= self.optimum - OPT_TOL:
            raise _Found
        return [
            replace(s, value=self._seen(a, s.value)) for a, s in zip(archs, scores, strict=True)
        ]


def run_algorithm(
    search: Search, table: NB201Table, metric: str, args: argparse.Namespace, noise: float
) -> tuple[list[list[float]], list[float]]:
    """Per seed: the queried true values in order (padded to the budget once the optimum is
    found) and the wall time of the run."""
    optimum = float(table.column(metric).max())
    traces, walls = [], []
    for seed in range(args.seeds):
        ev = StopAtOptimum(metric, table, optimum, args.full_runs, noise, seed)
        start = time.perf_counter()
        try:
            search(ev, args.budget, random.Random(seed))
        except _Found:
            ev.trace += [optimum] * (args.budget - len(ev.trace))
        walls.append(time.perf_counter() - start)
        if len(ev.trace) != args.budget:
            raise AssertionError(f"seed {seed} spent {len(ev.trace)} queries, budget {args.budget}")
        traces.append(ev.trace)
    return traces, walls


def print_table(dataset: str, optimum: float, budget: int, rows: list[dict]) -> None:
    points = [n for n in CHECKPOINTS if n <= budget]
    head = f"{'algorithm':<22}{'noise':>6}" + "".join(f"{'@' + str(n):>15}" for n in points)
    head += f"{'q→opt (med)':>13}{'found':>7}{'s/seed':>8}"
    print(
        f"\nNAS-Bench-201 {dataset}: best-so-far true test accuracy (mean ± std), optimum "
        f"{optimum:.2f}"
    )
    print(head)
    for r in rows:
        row = f"{r['algorithm']:<22}{r['noise']:>6g}" + "".join(
            f"{r['best_at'][str(n)]:>8.2f} ± {r['best_at_std'][str(n)]:<4.2f}" for n in points
        )
        med = r["queries_to_optimum_median"]
        row += f"{(f'{med:g}' if med is not None else f'>{budget}'):>13}"
        row += f"{r['found_share']:>7.2f}{r['wall_seconds_per_seed']:>8.2f}"
        print(row, flush=True)


def plot(path: Path, dataset: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        regret = r["mean_regret"]
        label = r["algorithm"] + (f" (noise {r['noise']:g})" if r["noise"] else "")
        ax.plot(range(1, len(regret) + 1), [v if v > 0 else math.nan for v in regret], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel("mean regret (true test accuracy, %)")
    ax.set_title(f"NAS-Bench-201 {dataset}")
    ax.legend(fontsize="x-small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=sorted(METRICS), default=["cifar10"])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    p.add_argument(
        "--predictors",
        nargs="+",
        choices=PREDICTOR_CHOICES,
        default=["delta"],
        help="the refiners' predictors (none: candidates in random order)",
    )
    p.add_argument("--noise", nargs="+", type=float, default=[0.0], help="score noise std (points)")
    p.add_argument("--data-dir", type=Path, default=None, help="NAS-Bench-201 table directory")
    p.add_argument("--proxy", default="naswot_score_cifar10", help="table column for pre-screening")
    p.add_argument("--population", type=int, default=10, help="regularized evolution population")
    p.add_argument("--sample-size", type=int, default=3, help="regularized evolution tournament")
    p.add_argument("--init-size", type=int, default=RefineConfig.init_size)
    p.add_argument("--parents", type=int, default=RefineConfig.parents)
    p.add_argument("--mutations", type=int, default=RefineConfig.mutations)
    p.add_argument("--q", type=int, default=RefineConfig.q)
    p.add_argument("--explore", type=float, default=RefineConfig.explore)
    p.add_argument("--prescreen-keep", type=float, default=RefineConfig.prescreen_keep)
    p.add_argument("--prescreen-pool", type=int, default=RefineConfig.prescreen_pool)
    p.add_argument("--restart", type=int, default=RefineConfig.restart, help="0: never restart")
    p.add_argument("--restart-size", type=int, default=RefineConfig.restart_size)
    p.add_argument(
        "--smooth",
        type=float,
        default=RefineConfig.smooth,
        help="parents by (1-s)*observed + s*predicted score",
    )
    p.add_argument(
        "--full-runs",
        action="store_true",
        help="spend the whole budget even after the optimum is found (slower, same numbers "
        "except the wall time)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    p.add_argument(
        "--plot", type=Path, default=None, help="mean regret plots (default: next to --out)"
    )
    args = p.parse_args(argv)
    if any(s < 0 for s in args.noise):
        p.error(f"--noise must be >= 0, got {args.noise}")
    torch.set_num_threads(1)

    start = time.perf_counter()
    table = NB201Table(args.data_dir)
    print(f"table loaded in {time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
    searches = make_searches(args, table)
    report: dict = {"datasets": {}}
    plot_base = args.plot or (args.out.with_suffix(".png") if args.out else None)
    for dataset in args.datasets:
        metric = METRICS[dataset]
        optimum = float(table.column(metric).max())
        rows = []
        for noise in args.noise:
            for name, search in searches.items():
                traces, walls = run_algorithm(search, table, metric, args, noise)
                rows.append(
                    {"algorithm": name, "noise": noise}
                    | summarise(traces, optimum, args.budget, walls)
                )
                print(
                    f"{dataset} {name} noise {noise:g}: done in {sum(walls):.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        print_table(dataset, optimum, args.budget, rows)
        # the JSON holds exactly the promised keys; spreads and curves are printed/plotted
        report["datasets"][dataset] = {
            "optimum": optimum,
            "rows": [{k: r[k] for k in ("algorithm", "noise", *JSON_KEYS)} for r in rows],
        }
        if args.out:
            write_json_atomic(args.out, report)  # each finished dataset is kept
        if plot_base:
            plot(plot_base.with_name(f"{plot_base.stem}_{dataset}.png"), dataset, rows)
    return report


if __name__ == "__main__":
    main()
