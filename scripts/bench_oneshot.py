"""One-shot evaluation speed: subnets scored per second by ``OneShotEvaluator`` against the
obvious implementation a user would write.

Both score the same random DARTS archs (C=16, 8 cells, 32x32 inputs, batch 64, the
pipeline's default calibration and validation batch counts) with the same inherited weights:

* ``ours``: the supernet runs each arch's single path (one-hot op weights: only the chosen
  ops run, lean ops, channels-last), BatchNorm recalibrated in place and restored after;
* ``copy``: deep-copy the supernet, keep each edge's chosen op (a standalone subnet),
  recalibrate its BatchNorm, evaluate.

The two must give the same accuracies (checked); the table gives subnets per second.

    python scripts/bench_oneshot.py --device cpu --out outputs/bench/oneshot.json
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path

import torch

from nas.config import OneShotConfig
from nas.evaluate import OneShotEvaluator, recalibrate_bn
from nas.export.report import accuracy
from nas.export.subnet import single_path
from nas.io import write_json_atomic
from nas.spaces import get_space
from nas.supernet import build_supernet


def copy_evaluate(supernet, space, archs, calib, val) -> list[float]:
    """The user's version: a deep copy of the supernet pruned to each arch's ops."""
    scores = []
    for arch in archs:
        net = single_path(copy.deepcopy(supernet.net), space, arch)
        recalibrate_bn(net, net, calib)
        scores.append(accuracy(net, val))
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--archs", type=int, default=8, help="archs timed per implementation")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    if args.archs < 1 or args.batch < 1:
        parser.error("--archs and --batch must be >= 1")
    torch.manual_seed(0)
    device = torch.device(args.device)
    defaults = OneShotConfig()
    space = get_space("darts")
    supernet = build_supernet(space, 10, 3, c=16, layers=8).to(device).eval()
    g = torch.Generator().manual_seed(0)
    calib = [
        torch.randn(args.batch, 3, 32, 32, generator=g).to(device)
        for _ in range(defaults.calib_batches)
    ]
    val = [
        (
            torch.randn(args.batch, 3, 32, 32, generator=g).to(device),
            torch.randint(0, 10, (args.batch,), generator=g).to(device),
        )
        for _ in range(defaults.val_batches)
    ]
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs + 1)]
    evaluator = OneShotEvaluator(supernet, calib, val)

    def timed(fn):
        fn(archs[:1])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn(archs[1:])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out, args.archs / (time.perf_counter() - start)

    ours, ours_rate = timed(lambda a: [s.value for s in evaluator.evaluate(a)])
    theirs, copy_rate = timed(lambda a: copy_evaluate(supernet, space, a, calib, val))
    agree = max(abs(x - y) for x, y in zip(ours, theirs, strict=True))
    print(
        f"device {device}, {args.archs} DARTS archs (C=16, 8 cells, 32x32), batch {args.batch}, "
        f"{defaults.calib_batches} calibration + {defaults.val_batches} validation batches"
    )
    print(f"largest accuracy difference between the two: {agree:.3f} points")
    print("| implementation | subnets/s |\n|---|---:|")
    print(f"| ours | {ours_rate:.3f} |\n| copy | {copy_rate:.3f} |")
    print(f"speedup: {ours_rate / copy_rate:.2f}x")
    if agree > 0.5:
        print("error: the implementations disagree", file=sys.stderr)
        return 1
    if args.out:
        write_json_atomic(
            args.out,
            {
                "subnets_per_s": {"ours": ours_rate, "copy": copy_rate},
                "speedup": ours_rate / copy_rate,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
