"""Predictor benchmark on the NAS-Bench-201 table: the delta predictor of Delta-NAS
(arXiv 2411.14498) against the same MLP on absolute encodings.

For each dataset, training size (25/50/100/200 random cells) and seed: fit both predictors, then
score 1000 other random cells. Global: Kendall tau and pairwise ranking accuracy of the predicted
scores. Local: for every test cell t and each of its 24 neighbours n (distance 1), the
predicted ``score(n) - score(t)``; Kendall tau within each neighbourhood (mean over t) and the
share of (t, n) pairs whose sign is right. Ties in the ground truth are left out.

``--features`` adds the rows ``delta+zc`` and ``absolute+zc``: the same predictors reading
per-arch zero-cost features beside the encoding (``predictor.features`` in a run), each
standardised over the space: ``params`` and ``flops`` (log of the table's NASLib counts for the
dataset, which are exact op counts), ``naswot`` (the proxy authors' stored CIFAR-10 scores;
the 341 cells without one get the lowest) and ``zen`` (NASLib's Zen-score for the dataset).
In a ``train.py`` run the features are computed by the run itself; here the table's columns
stand in for them, which is what a benchmark may use a table for.

    python scripts/bench_predictor.py --out outputs/bench/predictor.json
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from nas.evaluate.tabular import NB201Table
from nas.io import write_json_atomic
from nas.predictor import AbsolutePredictor, DeltaPredictor, Predictor, TrainConfig

METRICS = {
    "cifar10": "cifar10_test_200",
    "cifar100": "cifar100_test_200",
    "imagenet16": "imagenet16_test_200",
}
PREDICTORS = {"delta": DeltaPredictor, "absolute": AbsolutePredictor}
#: the table columns of each feature (``{ds}``: the dataset) and whether they are log-scaled
FEATURE_COLUMNS = {
    "params": ("params_{ds}_naslib_M", True),
    "flops": ("flops_{ds}_naslib_M", True),
    "naswot": ("naswot_score_cifar10", False),
    "zen": ("zen_{ds}", False),
}


def table_features(table: NB201Table, dataset: str, names: list[str]):
    """``archs -> Tensor[n, F]``: the features ``names`` of ``dataset`` from the table,
    standardised over all cells (a missing value gets the column's lowest)."""
    columns = []
    for name in names:
        column, log = FEATURE_COLUMNS[name]
        v = table.column(column.format(ds=dataset)).copy()
        v[np.isnan(v)] = np.nanmin(v)
        v = np.log(v) if log else v
        columns.append((v - v.mean()) / v.std())
    matrix = torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)
    return lambda archs: matrix[[table.row(a) for a in archs]]


MEASURES = ("kendall_tau", "pairwise_acc", "neighbour_kendall_tau", "neighbour_pairwise_acc")


def pairwise_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Share of pairs (i < j, true scores not tied) that ``pred`` orders like ``true``."""
    dp = np.sign(pred[:, None] - pred[None, :])
    dt = np.sign(true[:, None] - true[None, :])
    upper = np.triu(dt != 0, k=1)
    return float((dp == dt)[upper].mean())


def evaluate(pred: Predictor, test: list, truth: dict, space) -> dict[str, float]:
    """The four measures of ``pred`` on ``test`` archs (``truth``: arch -> true score)."""
    y = np.array([truth[a] for a in test])
    p = pred.predict(test).mean.numpy()
    refs, nbrs = [], []
    for t in test:
        for n in space.neighbours(t):
            refs.append(t)
            nbrs.append(n)
    d_pred = pred.predict_difference(refs, nbrs).mean.numpy().reshape(len(test), -1)
    d_true = np.array([truth[n] - truth[t] for t, n in zip(refs, nbrs, strict=True)])
    d_true = d_true.reshape(len(test), -1)
    taus = [kendalltau(dp, dt)[0] for dp, dt in zip(d_pred, d_true, strict=True)]
    signed = d_true != 0
    return {
        "kendall_tau": float(kendalltau(p, y)[0]),
        "pairwise_acc": pairwise_accuracy(p, y),
        "neighbour_kendall_tau": float(np.nanmean(taus)),
        "neighbour_pairwise_acc": float((np.sign(d_pred) == np.sign(d_true))[signed].mean()),
    }


def run_dataset(table: NB201Table, dataset: str, args: argparse.Namespace) -> dict:
    """Every predictor's four measures per training size on ``dataset``: mean and std over seeds."""
    space = table.space
    values = table.column(METRICS[dataset])
    truth = {space.from_str(s): float(v) for s, v in zip(table.arch_strs, values, strict=True)}
    cells = list(truth)
    rows = list(PREDICTORS) + ([f"{k}+zc" for k in PREDICTORS] if args.features else [])
    features = table_features(table, dataset, args.features) if args.features else None
    raw: dict[str, dict[int, list[dict[str, float]]]] = {k: {} for k in rows}
    for seed in range(args.seeds):
        rng = random.Random(seed)
        picked = rng.sample(cells, max(args.train_sizes) + args.test_size)
        test, pool = picked[: args.test_size], picked[args.test_size :]
        for n in args.train_sizes:
            train = pool[:n]
            for name in rows:
                kind = PREDICTORS[name.removesuffix("+zc")]
                kw = {"decay": args.decay} if kind is DeltaPredictor else {}
                if name.endswith("+zc"):
                    kw.update(features=features, feature_names=args.features)
                pred = kind(space, TrainConfig(seed=seed), **kw)
                pred.fit(train, [truth[a] for a in train])
                raw[name].setdefault(n, []).append(evaluate(pred, test, truth, space))
        print(f"{dataset}: seed {seed} done", file=sys.stderr, flush=True)
    return {
        name: {
            str(n): {
                m: {
                    "mean": statistics.fmean(r[m] for r in runs),
                    "std": statistics.pstdev(r[m] for r in runs),
                }
                for m in MEASURES
            }
            for n, runs in per_n.items()
        }
        for name, per_n in raw.items()
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=sorted(METRICS), default=sorted(METRICS))
    p.add_argument("--train-sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--decay", type=float, default=0.5, help="delta predictor pair weight decay")
    p.add_argument(
        "--features",
        nargs="*",
        choices=sorted(FEATURE_COLUMNS),
        default=[],
        help="zero-cost features for the +zc rows (e.g. params flops naswot zen)",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="NAS-Bench-201 table directory")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    table = NB201Table(args.data_dir)
    report: dict = {
        "test_size": args.test_size,
        "seeds": args.seeds,
        "decay": args.decay,
        "features": args.features,
        "datasets": {},
    }
    for dataset in args.datasets:
        results = run_dataset(table, dataset, args)
        print(
            f"\nNAS-Bench-201 {dataset}: predictor ranking on {args.test_size} test cells, "
            f"mean ± std over {args.seeds} seeds"
        )
        print(f"{'train':>5} {'predictor':<12}" + "".join(f"{m:>25}" for m in MEASURES))
        for n in args.train_sizes:
            for name in results:
                r = results[name][str(n)]
                cells_txt = "".join(f"{r[m]['mean']:>17.3f} ± {r[m]['std']:.3f}" for m in MEASURES)
                print(f"{n:>5} {name:<12}{cells_txt}", flush=True)
        report["datasets"][dataset] = {"metric": METRICS[dataset], "predictors": results}
        if args.out:
            write_json_atomic(args.out, report)  # each finished dataset is kept
    return report


if __name__ == "__main__":
    main()
