"""How well the latency lookup table predicts networks timed end to end, on this machine.

For each space (its standalone network at the given sizes: NB201 C=16, 5 cells per stage;
DARTS C=36, 20 layers, as ``retrain`` builds them), the table is measured on the device
(``nas.cost.latency``: every op timed once on its input, the fixed part calibrated on a
few random archs), then ``--subnets`` other random archs are timed end to end (median of
``--repeats`` forwards) and compared with the table's sums: Spearman's rho and the mean
absolute percentage error. Time it alone: another job on the cores skews every timing.

    python scripts/bench_latency.py --out outputs/bench/latency.json

``--out`` writes JSON: ``device``, ``threads``, ``batch_size``, ``image_size``, ``subnets`` and
``results`` (``{space: {"sizes", "spearman", "mape", "table_s", "check_s", "base_ms",
"predicted_ms", "measured_ms"}}``).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from nas.cost.latency import check, device_name, latency_key, measure_latency
from nas.io import write_json_atomic
from nas.spaces import get_space

#: the standalone networks' sizes ``retrain`` trains by default
SIZES = {"nb201": {"c": 16, "n_cells": 5}, "darts": {"c": 36, "layers": 20}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--subnets", type=int, default=50, help="random archs timed end to end")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--calibration", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    device = torch.device(args.device)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    results = {}
    for name in args.spaces:
        space = get_space(name, **SIZES[name])
        key = latency_key({"name": name, **SIZES[name]}, x.shape, args.num_classes, device)
        start = time.perf_counter()
        model = measure_latency(
            space, args.num_classes, x, key, args.warmup, args.repeats, args.calibration
        )
        table_s = time.perf_counter() - start
        rng = random.Random(f"{args.seed}:check")
        archs = [space.sample(rng) for _ in range(args.subnets)]
        start = time.perf_counter()
        r = check(model, args.num_classes, x, archs, args.warmup, args.repeats)
        results[name] = {
            "sizes": SIZES[name],
            **{k: r[k] for k in ("spearman", "mape")},
            "table_s": table_s,
            "check_s": time.perf_counter() - start,
            "base_ms": model.base_ms,
            **{k: r[k] for k in ("predicted_ms", "measured_ms")},
        }
    print(
        f"\nlatency table vs {args.subnets} random subnets timed end to end on "
        f"{device_name(device)} ({torch.get_num_threads()} threads), batch {args.batch_size}, "
        f"{args.image_size}x{args.image_size}"
    )
    print("| space | sizes | Spearman | MAPE % | measured ms (min-max) | table s | check s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        m = r["measured_ms"]
        sizes = ", ".join(f"{k}={v}" for k, v in r["sizes"].items())
        print(
            f"| {name} | {sizes} | {r['spearman']:.3f} | {r['mape']:.1f} | "
            f"{min(m):.2f}-{max(m):.2f} | {r['table_s']:.0f} | {r['check_s']:.0f} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            args.out,
            {
                "device": device_name(device),
                "threads": torch.get_num_threads(),
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "subnets": args.subnets,
                "results": results,
            },
        )


if __name__ == "__main__":
    main()
