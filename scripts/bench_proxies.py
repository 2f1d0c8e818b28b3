"""Zero-cost proxies against NAS-Bench-201 ground truth (CIFAR-10, 200-epoch test accuracy).

N random distinct NB201 cells (``--seed``), one fixed batch of real CIFAR-10 training images,
every proxy (or ``--proxies``) through :class:`~nas.evaluate.proxy.ProxyEvaluator` on the
standalone NB201 network (C=16, N=5) at initialisation. Prints Spearman and Kendall
correlations with ``cifar10_test_200`` and seconds per arch; ``--out FILE`` writes
``{"n_archs": N, "proxies": {name: {"spearman", "kendall", "sec_per_arch"}}}``; one scatter
plot per proxy goes to ``--plots``.

Correlations are taken over the archs a proxy scores with a finite value (as the epsilon
paper's evaluation does); the table also shows how many that is and the Spearman correlation
over all archs with the non-finite ones ranked worst (as a search would see them).

Every (arch, proxy) result is appended to a JSONL cache as it is produced, tagged with the
seed and batch sizes, so a killed run continues where it stopped; ``--report-only`` prints the
table from the cache over the archs that are complete so far. ``--shard I/N`` splits the archs
over N processes that share the cache (on 2 cores, two single-thread shards outpace one
two-thread run). Example::

    nice .venv/bin/python scripts/bench_proxies.py --n-archs 1000 --seed 0 \
        --out outputs/bench/proxies.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import math
import random
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import stats

from nas.evaluate.proxies import available_proxies, get_proxy
from nas.evaluate.proxy import ProxyEvaluator
from nas.io import append_jsonl, read_jsonl, write_json_atomic
from nas.spaces import NB201Space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def load_cifar10_batch(zip_path: Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images drawn with ``seed`` from a CIFAR-10 JPEG zip (``<split>/<class>/<id>.jpg``),
    normalised with the CIFAR-10 mean/std: ``([n, 3, 32, 32] float32, [n] int64 labels)``."""
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(name for name in zf.namelist() if name.endswith(".jpg"))
        if n > len(names):
            raise ValueError(f"{zip_path} holds {len(names)} images; asked for {n}")
        picked = random.Random(seed).sample(names, n)
        pixels = np.stack(
            [np.asarray(Image.open(io.BytesIO(zf.read(p))).convert("RGB")) for p in picked]
        )
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    labels = torch.tensor([CIFAR10_CLASSES.index(p.split("/")[-2]) for p in picked])
    return (x - mean) / std, labels


def load_accuracy(table: Path, metric: str) -> dict[str, float]:
    """``{arch_str: metric}`` from the NB201 accuracy table; an unknown column lists the valid ones."""
    with gzip.open(table, "rt", newline="") as f:
        reader = csv.DictReader(f)
        if metric not in (reader.fieldnames or []):
            raise KeyError(f"unknown metric {metric!r} in {table}; columns: {reader.fieldnames}")
        return {row["arch_str"]: float(row[metric]) for row in reader}


def sample_archs(space: NB201Space, n: int, seed: int) -> list[str]:
    """``n`` distinct arch strings drawn uniformly with ``seed``."""
    rng, seen = random.Random(seed), {}
    while len(seen) < n:
        seen.setdefault(space.to_str(space.sample(rng)), None)
    return list(seen)


def correlations(scores: list[float], accs: list[float]) -> dict[str, float]:
    """Spearman/Kendall over finite scores, and Spearman over all with non-finite ranked worst."""
    s, a = np.asarray(scores, dtype=float), np.asarray(accs, dtype=float)
    ok = np.isfinite(s)
    worst = np.where(ok, s, -np.inf)
    enough = ok.sum() > 2
    return {
        "spearman": float(stats.spearmanr(s[ok], a[ok])[0]) if enough else math.nan,
        "kendall": float(stats.kendalltau(s[ok], a[ok])[0]) if enough else math.nan,
        "spearman_all": float(stats.spearmanr(worst, a)[0]),
        "n_finite": int(ok.sum()),
    }


def scatter(path: Path, name: str, scores: list[float], accs: list[float], rho: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, a = np.asarray(scores, dtype=float), np.asarray(accs, dtype=float)
    ok = np.isfinite(s)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(a[ok], s[ok], s=6, alpha=0.6)
    if ok.any() and s[ok].min() > 0 and s[ok].max() / s[ok].min() > 1e3:
        ax.set_yscale("log")
    ax.set_xlabel("NB201 CIFAR-10 test accuracy (%)")
    ax.set_ylabel(name)
    ax.set_title(f"{name}: Spearman {rho:.3f} over {ok.sum()}/{len(s)} archs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``."""
    try:
        shard, shards = (int(v) for v in text.split("/"))
    except ValueError:
        shard, shards = -1, 0
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, e.g. 0/2; got {text!r}")
    return shard, shards


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-archs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="arch sample, image batch and init seed")
    p.add_argument("--proxies", nargs="+", default=available_proxies(), choices=available_proxies())
    p.add_argument("--batch-size", type=int, default=256, help="images in the fixed batch")
    p.add_argument(
        "--proxy-batch",
        nargs="*",
        default=[],
        metavar="NAME=N",
        help="override a proxy's registered batch size, e.g. epsilon=64",
    )
    p.add_argument(
        "--images", type=Path, default=DATA / "cifar10_jpeg" / "cifar10_train_5k_jpeg.zip"
    )
    p.add_argument("--table", type=Path, default=DATA / "nasbench201" / "nb201_accuracy.csv.gz")
    p.add_argument("--metric", default="cifar10_test_200")
    p.add_argument("--cache", type=Path, default=None, help="JSONL of per-arch results")
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    p.add_argument("--plots", type=Path, default=Path("outputs/bench/plots"))
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument(
        "--shard",
        type=parse_shard,
        default=(0, 1),
        metavar="I/N",
        help="compute only archs I, I+N, I+2N, ... (run N processes sharing one cache)",
    )
    p.add_argument(
        "--report-only", action="store_true", help="summarise the cache, compute nothing"
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    overrides = dict(item.split("=", 1) for item in args.proxy_batch)
    unknown = set(overrides) - set(args.proxies)
    if unknown:
        raise SystemExit(
            f"--proxy-batch names {sorted(unknown)} not among --proxies {args.proxies}"
        )
    cache = args.cache or Path(f"outputs/bench/proxies_seed{args.seed}.jsonl")
    space = NB201Space()
    accuracy = load_accuracy(args.table, args.metric)
    archs = sample_archs(space, args.n_archs, args.seed)
    batch_sizes = {
        name: int(overrides[name]) if name in overrides else get_proxy(name).batch_size
        for name in args.proxies
    }
    setting = {"seed": args.seed, "images": args.batch_size}
    done: dict[tuple[str, str], dict] = {
        (r["arch"], r["proxy"]): r
        for r in read_jsonl(cache)
        if r["proxy"] in batch_sizes
        and r.get("batch_size") == batch_sizes[r["proxy"]]
        and all(r.get(k) == v for k, v in setting.items())
    }
    if not args.report_only:
        inputs, targets = load_cifar10_batch(args.images, args.batch_size, args.seed)
        evaluators = {
            name: ProxyEvaluator(
                space,
                name,
                inputs,
                targets,
                seed=args.seed,
                batch_size=batch_sizes[name],
            )
            for name in args.proxies
        }
        shard, shards = args.shard
        for i, arch_str in enumerate(archs):
            if i % shards != shard:
                continue
            for name, evaluator in evaluators.items():
                if (arch_str, name) in done:
                    continue
                (score,) = evaluator.evaluate([space.from_str(arch_str)])
                record = {
                    **setting,
                    "arch": arch_str,
                    "proxy": name,
                    "batch_size": batch_sizes[name],
                    "score": score.value,
                    "seconds": score.cost.seconds,
                }
                append_jsonl(cache, record)
                done[(arch_str, name)] = record
            if (i + 1) % 25 == 0:
                print(f"{i + 1}/{len(archs)} archs", flush=True)
    complete = [a for a in archs if all((a, name) in done for name in args.proxies)]
    if not complete:
        raise SystemExit(f"no arch has every proxy of {args.proxies} in {cache} yet")
    accs = [accuracy[a] for a in complete]
    summary: dict[str, dict[str, float]] = {}
    print(f"\n{len(complete)} NB201 archs (seed {args.seed}), {args.metric}")
    print(
        f"{'proxy':<10} {'spearman':>9} {'kendall':>8} {'scored':>10} {'rho(all)':>9} {'s/arch':>8}"
    )
    for name in args.proxies:
        scores = [done[(a, name)]["score"] for a in complete]
        corr = correlations(scores, accs)
        sec = float(np.mean([done[(a, name)]["seconds"] for a in complete]))
        summary[name] = {
            "spearman": corr["spearman"],
            "kendall": corr["kendall"],
            "sec_per_arch": sec,
        }
        print(
            f"{name:<10} {corr['spearman']:>9.3f} {corr['kendall']:>8.3f} "
            f"{corr['n_finite']:>5}/{len(complete):<4} {corr['spearman_all']:>9.3f} {sec:>8.3f}"
        )
        scatter(args.plots / f"{name}.png", name, scores, accs, corr["spearman"])
    if args.out:
        write_json_atomic(args.out, {"n_archs": len(complete), "proxies": summary})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
