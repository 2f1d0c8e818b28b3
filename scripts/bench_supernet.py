"""Throughput and peak memory of the DARTS supernet against the reference search network.

Variants, built from one seed with the same parameters (the reference copies ours):

* ``ours``: ``nas.supernet.build_supernet(DartsSpace(), ...)`` as ``search=darts`` uses it;
* ``naive``: the search network of "DARTS: Differentiable Architecture Search" (arXiv
  1806.09055) as its code writes it (``nas.supernet.reference``: every op on every edge,
  ``none`` as ``x * 0``), always in fp32 and NCHW.

Before timing, both are run on one small batch and must agree on the loss and on every
gradient (weights and alphas) in float64, and on the loss in float32. Each variant is then timed in a fresh process, so that peak
memory is its own: peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA. Steps:

* ``bilevel``: one first-order DARTS step, an alpha step (Adam on ``loss(net(x_val,
  softmax(a)))``; ``ours`` freezes the weights there as ``SupernetModule`` does, so autograd
  skips the weight gradients that the paper's code computes and then zeroes) then a weight step (SGD on ``loss(net(x_train, softmax(a).detach()))``,
  grad-norm clip 5): two batches through forward and backward;
* ``weights``: the weight step alone.

img/s = images through forward and backward per second, median over the timed steps.
``--repeats R`` measures R rounds of both variants, alternating their order, and reports the
median img/s per variant and the median of the rounds' speedups (a drifting machine speed
then biases neither variant).
``--precision bf16`` runs ``ours`` under bf16 autocast; ``naive`` stays fp32 (the reference).

Usage: ``python scripts/bench_supernet.py --device cpu --precision fp32 --batch 64
--out bench.json``; ``--out`` writes the figures of the first of ``--kinds`` as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from nas.memory import status_mb
from nas.search.strategies import frozen
from nas.spaces import DartsSpace
from nas.supernet import build_supernet
from nas.supernet.reference import build_reference_supernet

STEP_KINDS = ("bilevel", "weights")
VARIANTS = ("ours", "naive")


def build(variant: str, args: argparse.Namespace) -> torch.nn.Module:
    """The ``variant`` network, seeded so that both variants hold the same parameters."""
    torch.manual_seed(args.seed)
    space = DartsSpace()
    options = {"c": args.c, "layers": args.layers, "compile": args.compile}
    ours = build_supernet(space, args.classes, 3, **options)
    if variant == "ours":
        return ours
    return build_reference_supernet(space, args.classes, 3, args.c, args.layers, copy_from=ours)


def batches(args: argparse.Namespace, batch: int, device: torch.device):
    g = torch.Generator().manual_seed(args.seed + 1)
    for _ in range(2):
        x = torch.randn(batch, 3, args.size, args.size, generator=g)
        y = torch.randint(0, args.classes, (batch,), generator=g)
        yield x.to(device), y.to(device)


def init_alphas(device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shape = (14, len(DartsSpace.op_names))
    return {
        k: (1e-3 * torch.randn(shape, generator=g)).to(device, dtype).requires_grad_()
        for k in ("normal", "reduce")
    }


class Trainer:
    """One first-order DARTS search step on a network, as ``search=darts`` performs it."""

    def __init__(
        self,
        net: torch.nn.Module,
        device: torch.device,
        autocast: bool,
        dtype: torch.dtype = torch.float32,
        freeze_weights_in_alpha_step: bool = False,
    ) -> None:
        self.net = net
        self.freeze = freeze_weights_in_alpha_step
        self.alphas = init_alphas(device, dtype)
        self.w_opt = torch.optim.SGD(net.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(
            self.alphas.values(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3
        )
        self.autocast: Callable[[], contextlib.AbstractContextManager] = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
            if autocast
            else contextlib.nullcontext
        )

    def loss(self, x: torch.Tensor, y: torch.Tensor, detach: bool) -> torch.Tensor:
        w = {k: a.softmax(-1) for k, a in self.alphas.items()}
        if detach:
            w = {k: v.detach() for k, v in w.items()}
        with self.autocast():
            return F.cross_entropy(self.net(x, w), y)

    def alpha_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.a_opt.zero_grad(set_to_none=True)
        with frozen(self.net) if self.freeze else contextlib.nullcontext():
            loss = self.loss(x, y, detach=False)
            loss.backward()
        self.a_opt.step()
        return loss.item()

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.w_opt.zero_grad(set_to_none=True)
        loss = self.loss(x, y, detach=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
        self.w_opt.step()
        return loss.item()

    def step(self, kind: str, train, val) -> list[float]:
        losses = [self.alpha_step(*val)] if kind == "bilevel" else []
        return [*losses, self.weight_step(*train)]


def check_equal(args: argparse.Namespace, device: torch.device) -> None:
    """Assert that ours and naive compute the same function on a small batch: equal loss and
    equal gradients of every weight and alpha in float64 (rounding-free up to 1e-7), equal
    loss in float32. (Elementwise float32 gradients may differ where rounding flips the sign of
    a ReLU input near zero.) TF32 is off during the check: on CUDA it rounds convolutions to
    10-bit mantissas, differently in the two networks."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    train, _ = batches(args, args.check_batch, device)
    for dtype in (torch.float64, torch.float32):
        results = []
        for variant in VARIANTS:
            net = build(variant, args).to(device, dtype)
            trainer = Trainer(net, device, autocast=False, dtype=dtype)
            loss = trainer.loss(train[0].to(dtype), train[1], detach=False)
            loss.backward()
            grads = {n: p.grad for n, p in net.named_parameters()}
            grads |= {f"alpha.{k}": a.grad for k, a in trainer.alphas.items()}
            results.append((loss.detach(), grads))
        (l_ours, g_ours), (l_naive, g_naive) = results
        torch.testing.assert_close(l_ours, l_naive, rtol=1e-5, atol=0)
        if dtype == torch.float64:
            for name, g in g_naive.items():
                atol = 1e-7 * g.abs().max().item()
                torch.testing.assert_close(g_ours[name], g, rtol=1e-7, atol=atol, msg=name)


def measure(variant: str, kind: str, args: argparse.Namespace) -> dict[str, float]:
    """Time ``kind`` steps of ``variant`` in this process; its img/s and peak memory."""
    device = torch.device(args.device)
    net = build(variant, args).to(device)
    # ours freezes the weights in the alpha step as SupernetModule does; the paper's code
    # computes their gradients there and zeroes them before the weight step
    trainer = Trainer(
        net,
        device,
        autocast=variant == "ours" and args.precision == "bf16",
        freeze_weights_in_alpha_step=variant == "ours",
    )
    train, val = batches(args, args.batch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        losses = trainer.step(kind, train, val)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        if not all(map(math.isfinite, losses)):
            raise RuntimeError(f"{variant}: non-finite loss {losses}")
    images = args.batch * (2 if kind == "bilevel" else 1)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = status_mb("VmHWM")  # the peak resident set of this fresh process
    return {"img_per_s": images / statistics.median(times), "peak_mem_mb": peak_mb}


def measure_in_fresh_process(variant: str, kind: str, argv: list[str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, *argv, "--worker", f"{variant}:{kind}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_paired(kind: str, argv: list[str], repeats: int) -> list[dict[str, dict[str, float]]]:
    """``repeats`` rounds of both variants, each in a fresh process, the order alternating
    between rounds so that a machine whose speed drifts favours neither."""
    rounds = []
    for r in range(repeats):
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        rounds.append({v: measure_in_fresh_process(v, kind, argv) for v in order})
    return rounds


def report(
    kind: str, rounds: list[dict[str, dict[str, float]]], args: argparse.Namespace
) -> dict[str, object]:
    """Per variant, the median img/s and the largest peak memory over the rounds; the speedup
    is the median of the rounds' own ratios."""
    results = {
        v: {
            "img_per_s": statistics.median(r[v]["img_per_s"] for r in rounds),
            "peak_mem_mb": max(r[v]["peak_mem_mb"] for r in rounds),
        }
        for v in VARIANTS
    }
    ratios = [r["ours"]["img_per_s"] / r["naive"]["img_per_s"] for r in rounds]
    summary = {
        "device": args.device,
        "precision": args.precision,
        "variants": results,
        "speedup": statistics.median(ratios),
        "mem_ratio": results["ours"]["peak_mem_mb"] / results["naive"]["peak_mem_mb"],
    }
    mem = "peak RSS" if args.device == "cpu" else "peak alloc"
    print(
        f"\n{kind} step, batch {args.batch}, C={args.c}, {args.layers} cells, "
        f"{args.size}x{args.size}, {args.device}, ours {args.precision} / naive fp32, "
        f"{args.steps} timed steps after {args.warmup} warm-up, {len(rounds)} round(s) "
        f"(speedups {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"| variant | img/s | {mem} (MB) |\n|---|---:|---:|")
    for variant, r in results.items():
        print(f"| {variant} | {r['img_per_s']:.1f} | {r['peak_mem_mb']:.0f} |")
    print(f"| ours/naive | {summary['speedup']:.2f}x | {summary['mem_ratio']:.2f} |")
    return summary


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--c", type=int, default=16, help="initial channels")
    p.add_argument("--layers", type=int, default=8, help="cells")
    p.add_argument("--size", type=int, default=32, help="input height and width")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument(
        "--repeats", type=int, default=1, help="rounds of both variants, order alternating"
    )
    p.add_argument("--kinds", default="bilevel,weights", help="of: " + ",".join(STEP_KINDS))
    p.add_argument("--check-batch", type=int, default=4, help="batch of the equality check")
    p.add_argument("--compile", action="store_true", help="torch.compile ours")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="JSON file for the first of --kinds")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        variant, kind = args.worker.split(":")
        print(json.dumps(measure(variant, kind, args)))
        return
    check_equal(args, torch.device(args.device))
    print("ours and naive agree: loss and gradients (weights, alphas) within tolerance")
    summaries = []
    for kind in args.kinds.split(","):
        summaries.append(report(kind, measure_paired(kind, argv, args.repeats), args))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summaries[0], f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
