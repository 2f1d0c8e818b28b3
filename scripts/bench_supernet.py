"""Throughput and peak memory of the DARTS supernet against the reference search network.

Variants, built from one seed with the same parameters (the reference copies ours):

* ``ours``: ``nas.supernet.build_supernet(DartsSpace(), ...)`` as ``search=darts`` uses it,
  with ``--backend`` (``auto``: lean on the CPU, plain on CUDA), ``--nchw`` (the NCHW
  layout instead of channels-last), ``--compile`` (e.g.
  ``cudagraphs``) or ``--graph`` (the whole step captured as one CUDA graph), under bf16
  autocast with ``--precision bf16``;
* ``naive``: the search network of "DARTS: Differentiable Architecture Search" (arXiv
  1806.09055) as its code writes it (``nas.supernet.reference``: every op on every edge,
  ``none`` as ``x * 0``), in fp32 and NCHW, as the paper ran it;
* ``naive_bf16``: the same under bf16 autocast (with ``--precision bf16`` only).

Before timing, both are run on one small batch and must agree on the loss and on every
gradient (weights and alphas) in float64, and on the loss in float32. Each variant is then timed in a fresh process, so that peak
memory is its own: peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA. Steps:

* ``bilevel``: one first-order DARTS step, an alpha step (Adam on ``loss(net(x_val,
  softmax(a)))``; ``ours`` freezes the weights there as ``SupernetModule`` does, so autograd
  skips the weight gradients that the paper's code computes and then zeroes) then a weight step (SGD on ``loss(net(x_train, softmax(a).detach()))``,
  grad-norm clip 5): two batches through forward and backward;
* ``weights``: the weight step alone.

img/s = images through forward and backward per second, median over the timed steps, with
cuDNN's autotuning on for every variant (``torch.backends.cudnn.benchmark``, as
``+experiment=cifar10_fast`` runs; ``--no-cudnn-benchmark``: off).
``--ops`` also counts the ATen operations of one eager step (views and bare allocations
left out): what a GPU launches a kernel or more for, the measure of a launch-bound step.
``--profile PREFIX`` profiles two eager steps (after one warm-up, before the timing) with
``torch.profiler`` and writes each variant's busiest operations to
``PREFIX_<variant>_<step>.txt``; the report adds the device's kernel time per step
(``kernel_ms_per_step``): against a CUDA-graph step's time, what is left besides the kernels' own
work.
``--repeats R`` measures R rounds of both variants, alternating their order, and reports the
median img/s per variant and the median of the rounds' speedups (a drifting machine speed
then biases neither variant).
``--precision bf16`` runs ``ours`` (and ``naive_bf16``) under bf16 autocast; ``naive`` stays
fp32 (the reference). ``--naive-batch`` runs the references at another batch size than ours
(the paper's 64 against a larger recipe batch); img/s compares them all the same.

Usage: ``python scripts/bench_supernet.py --device cpu --precision fp32 --batch 64
--out bench.json``; ``--out`` writes the figures of the first of ``--kinds`` as JSON:
``device``, ``precision``, ``variants`` (img/s and peak memory of each, with ``--ops`` the
operations per step, with ``--profile`` the kernel milliseconds per step), ``speedup`` (ours
over naive fp32), ``speedup_bf16`` (over naive in bf16, when measured), ``mem_ratio``.
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
from torch.utils._python_dispatch import TorchDispatchMode

from nas.memory import status_mb
from nas.search.strategies import frozen
from nas.spaces import DartsSpace
from nas.supernet import build_supernet
from nas.supernet.reference import build_reference_supernet

STEP_KINDS = ("bilevel", "weights")
VARIANTS = ("ours", "naive", "naive_bf16")


def variants(args: argparse.Namespace) -> tuple[str, ...]:
    """The variants measured (``--references``: ours against both references, the bf16 one
    only beside a bf16 run of ours; else ours alone)."""
    if not args.references:
        return VARIANTS[:1]
    return VARIANTS if args.precision == "bf16" else VARIANTS[:2]


def compile_option(value: str) -> bool | str:
    """``--compile``'s value as ``space.supernet.compile`` takes it."""
    return {"none": False, "true": True}.get(value, value)


def build(variant: str, args: argparse.Namespace) -> torch.nn.Module:
    """The ``variant`` network, seeded so that both variants hold the same parameters."""
    torch.manual_seed(args.seed)
    space = DartsSpace()
    options = {"c": args.c, "layers": args.layers, "backend": args.backend}
    if variant == "ours":
        options["compile"] = compile_option(args.compile)
        options["channels_last"] = args.channels_last
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
    """One first-order DARTS search step on a network, as ``search=darts`` performs it.

    With ``graph`` (CUDA only) the whole step (both forwards and backwards, Adam's and SGD's
    updates, the clip) is captured once as a CUDA graph after three eager warm-up steps and
    replayed from then on (``torch.cuda.graph``, whole-network capture): what the step costs
    with no kernel-launch overhead. The batches are the graph's static inputs.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        device: torch.device,
        autocast: bool,
        dtype: torch.dtype = torch.float32,
        freeze_weights_in_alpha_step: bool = False,
        graph: bool = False,
    ) -> None:
        self.net = net
        self.freeze = freeze_weights_in_alpha_step
        self.alphas = init_alphas(device, dtype)
        # the multi-tensor (foreach) updates CUDA defaults to, on every device
        self.w_opt = torch.optim.SGD(
            net.parameters(), 0.025, momentum=0.9, weight_decay=3e-4, foreach=True
        )
        self.a_opt = torch.optim.Adam(
            self.alphas.values(),
            3e-4,
            betas=(0.5, 0.999),
            weight_decay=1e-3,
            capturable=graph,
            foreach=True,
        )
        self.autocast: Callable[[], contextlib.AbstractContextManager] = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not graph))
            if autocast
            else contextlib.nullcontext
        )
        self.graph = torch.cuda.CUDAGraph() if graph else None
        self.captured: list[torch.Tensor] | None = None
        # softmax weights are never exactly zero: every op runs, no host read of the weights
        self.active = (
            {k: torch.ones_like(a, dtype=torch.bool).tolist() for k, a in self.alphas.items()}
            if graph
            else None
        )

    def loss(self, x: torch.Tensor, y: torch.Tensor, detach: bool) -> torch.Tensor:
        w = {k: a.softmax(-1) for k, a in self.alphas.items()}
        if detach:
            w = {k: v.detach() for k, v in w.items()}
        with self.autocast():
            if self.active is None:
                return F.cross_entropy(self.net(x, w), y)
            return F.cross_entropy(self.net(x, w, self.active), y)

    def alpha_step(self, x: torch.Tensor, y: torch.Tensor, zero: bool = True) -> torch.Tensor:
        if zero:
            self.a_opt.zero_grad(set_to_none=True)
        with frozen(self.net) if self.freeze else contextlib.nullcontext():
            loss = self.loss(x, y, detach=False)
            loss.backward()
        self.a_opt.step()
        return loss.detach()

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, zero: bool = True) -> torch.Tensor:
        if zero:
            self.w_opt.zero_grad(set_to_none=True)
        loss = self.loss(x, y, detach=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0, foreach=True)
        self.w_opt.step()
        return loss.detach()

    def _step(self, kind: str, train, val, zero: bool = True) -> list[torch.Tensor]:
        losses = [self.alpha_step(*val, zero=zero)] if kind == "bilevel" else []
        return [*losses, self.weight_step(*train, zero=zero)]

    def _capture(self, kind: str, train, val) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step(kind, train, val)
        torch.cuda.current_stream().wait_stream(side)
        # every gradient is written once per step (the alpha step's weights are frozen, the
        # weight step's alphas detached): none to zero inside the graph
        self.w_opt.zero_grad(set_to_none=True)
        self.a_opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.captured = self._step(kind, train, val, zero=False)

    def step(self, kind: str, train, val) -> list[float]:
        if self.graph is None:
            return [loss.item() for loss in self._step(kind, train, val)]
        if self.captured is None:
            self._capture(kind, train, val)
        self.graph.replay()
        return [loss.item() for loss in self.captured]


class CountOps(TorchDispatchMode):
    """Counts the ATen operations run inside it that compute (not views, detaches or bare
    allocations): on a GPU, each launches one kernel or more."""

    SKIP = frozenset({"detach", "empty", "empty_like", "empty_strided", "new_empty"})

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not func.is_view and name not in self.SKIP and not name.startswith("_record_function"):
            self.count += 1
        return func(*args, **(kwargs or {}))


def profile_steps(
    trainer: Trainer, kind: str, train, val, variant: str, args: argparse.Namespace
) -> float:
    """Profile two eager steps after a warm-up one; write the busiest operations to
    ``{args.profile}_{variant}_{kind}.txt`` and return the kernel (or, on a CPU, operator)
    milliseconds per step."""
    from torch.profiler import ProfilerActivity, profile

    cuda = args.device == "cuda"
    trainer._step(kind, train, val)  # cuDNN's autotuning and lazy set-up out of the profile
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities) as prof:
        for _ in range(2):
            trainer._step(kind, train, val)
        if cuda:
            torch.cuda.synchronize()
    events = prof.key_averages()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    with open(f"{args.profile}_{variant}_{kind}.txt", "w") as f:
        f.write(events.table(sort_by=sort, row_limit=30))
    us = sum(e.self_device_time_total if cuda else e.self_cpu_time_total for e in events)
    return us / 2 / 1000


def check_equal(args: argparse.Namespace, device: torch.device) -> None:
    """Assert that ours and naive compute the same function on a small batch: equal loss and
    equal gradients of every weight and alpha in float64 (rounding-free up to 1e-7), equal
    loss in float32. (Elementwise float32 gradients may differ where rounding flips the sign of
    a ReLU input near zero.) TF32 is off during the check: on CUDA it rounds convolutions to
    10-bit mantissas, differently in the two networks."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    train, _ = batches(args, args.check_batch, device)
    eager = argparse.Namespace(**{**vars(args), "compile": "none"})  # checks the function
    for dtype in (torch.float64, torch.float32):
        results = []
        for variant in VARIANTS[:2]:
            net = build(variant, eager).to(device, dtype)
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
        autocast=variant != "naive" and args.precision == "bf16",
        freeze_weights_in_alpha_step=variant == "ours",
        graph=variant == "ours" and args.graph,
    )
    batch = args.batch if variant == "ours" else args.naive_batch or args.batch
    train, val = batches(args, batch, device)
    extra: dict[str, float] = {}
    if args.ops:  # one eager step, before any capture
        with CountOps() as counter:
            trainer._step(kind, train, val)
        extra["ops_per_step"] = counter.count
    if args.profile:
        extra["kernel_ms_per_step"] = profile_steps(trainer, kind, train, val, variant, args)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, begin = [], time.perf_counter()
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        losses = trainer.step(kind, train, val)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        else:
            warmup_s = time.perf_counter() - begin
        if not all(map(math.isfinite, losses)):
            raise RuntimeError(f"{variant}: non-finite loss {losses}")
    images = batch * (2 if kind == "bilevel" else 1)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = status_mb("VmHWM")  # the peak resident set of this fresh process
    return {
        "img_per_s": images / statistics.median(times),
        "peak_mem_mb": peak_mb,
        "warmup_s": warmup_s,  # compilation or graph capture included
        **extra,
    }


def measure_in_fresh_process(variant: str, kind: str, argv: list[str]) -> dict[str, float]:
    cmd = [sys.executable, __file__, *argv, "--worker", f"{variant}:{kind}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_paired(
    kind: str, argv: list[str], args: argparse.Namespace
) -> list[dict[str, dict[str, float]]]:
    """``--repeats`` rounds of every variant, each in a fresh process, the order alternating
    between rounds so that a machine whose speed drifts favours none."""
    rounds = []
    for r in range(args.repeats):
        order = variants(args) if r % 2 == 0 else variants(args)[::-1]
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
            "warmup_s": max(r[v]["warmup_s"] for r in rounds),
            **{
                k: rounds[0][v][k]
                for k in ("ops_per_step", "kernel_ms_per_step")
                if k in rounds[0][v]
            },
        }
        for v in variants(args)
    }
    summary: dict[str, object] = {
        "device": args.device,
        "precision": args.precision,
        "variants": results,
    }
    ratios = []
    if "naive" in results:
        ratios = [r["ours"]["img_per_s"] / r["naive"]["img_per_s"] for r in rounds]
        summary["speedup"] = statistics.median(ratios)
        summary["mem_ratio"] = results["ours"]["peak_mem_mb"] / results["naive"]["peak_mem_mb"]
    if "naive_bf16" in results:
        summary["speedup_bf16"] = statistics.median(
            r["ours"]["img_per_s"] / r["naive_bf16"]["img_per_s"] for r in rounds
        )
    mem = "peak RSS" if args.device == "cpu" else "peak alloc"
    print(
        f"\n{kind} step, batch {args.batch} (naive {args.naive_batch or args.batch}), "
        f"C={args.c}, {args.layers} cells, {args.size}x{args.size}, {args.device}, ours "
        f"{args.precision} (backend {args.backend}, compile {args.compile}, "
        f"{'channels-last' if args.channels_last else 'NCHW'}) / naive fp32, "
        f"{args.steps} timed steps after {args.warmup} warm-up, {len(rounds)} round(s) "
        f"(speedups {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    columns = {"ops_per_step": "ops per step", "kernel_ms_per_step": "kernel ms per step"}
    shown = [k for k in columns if k in results["ours"]]
    print(
        f"| variant | img/s | {mem} (MB) | warm-up (s) |"
        + "".join(f" {columns[k]} |" for k in shown)
        + "\n|---|---:|---:|---:|"
        + "---:|" * len(shown)
    )
    for variant, r in results.items():
        print(
            f"| {variant} | {r['img_per_s']:.1f} | {r['peak_mem_mb']:.0f} | {r['warmup_s']:.1f} |"
            + "".join(f" {r[k]:,.0f} |" if k == "ops_per_step" else f" {r[k]:.1f} |" for k in shown)
        )
    if "speedup" in summary:
        print(f"| ours/naive | {summary['speedup']:.2f}x | {summary['mem_ratio']:.2f} |")
    if "speedup_bf16" in summary:
        print(f"| ours/naive_bf16 | {summary['speedup_bf16']:.2f}x | |")
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
    p.add_argument(
        "--compile",
        default="none",
        help="ours' space.supernet.compile: none, true, a torch.compile mode or cudagraphs",
    )
    p.add_argument("--backend", default="auto", help="ours' space.supernet.backend")
    p.add_argument(
        "--no-cudnn-benchmark",
        dest="cudnn_benchmark",
        action="store_false",
        help="time without cuDNN's autotuning (torch.backends.cudnn.benchmark; default on)",
    )
    p.add_argument(
        "--nchw",
        dest="channels_last",
        action="store_false",
        help="ours in NCHW (space.supernet.channels_last=false; default channels-last)",
    )
    p.add_argument(
        "--graph", action="store_true", help="ours' whole step captured as one CUDA graph"
    )
    p.add_argument(
        "--no-references",
        dest="references",
        action="store_false",
        help="time ours alone (no reference network, no equality check)",
    )
    p.add_argument("--ops", action="store_true", help="count the ATen operations of one eager step")
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="profile two eager steps; tables to PREFIX_*.txt (a CPU's peak RSS then counts it)",
    )
    p.add_argument("--naive-batch", type=int, default=0, help="the references' batch (0: --batch)")
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
        # every variant lets cuDNN pick its fastest kernels, as the search recipes do
        # (trainer.benchmark); the equality check below keeps its deterministic defaults
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
        print(json.dumps(measure(variant, kind, args)))
        return
    if args.references:
        check_equal(args, torch.device(args.device))
        print("ours and naive agree: loss and gradients (weights, alphas) within tolerance")
    summaries = []
    for kind in args.kinds.split(","):
        summaries.append(report(kind, measure_paired(kind, argv, args), args))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summaries[0], f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
