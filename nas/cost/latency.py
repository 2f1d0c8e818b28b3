"""Latency of an arch's network on the run's own device, from a lookup table of its ops.

Following once-for-all's latency tables ("Once-for-All: Train One Network and Specialize it
for Efficient Deployment", arXiv 1908.09791): each op on each edge of the space's standalone
network (the one ``retrain`` trains and a user deploys) is timed where it runs, inside the
networks of :func:`~nas.cost.sizes.covering_archs`, in eval mode without gradients, at the
run's batch size and image size on the run's device. An arch's latency is the sum of its ops' plus a fixed part (stem, cell
preprocessing, reductions, head and the glue between ops), calibrated as the median, over a
few random archs timed end to end, of their time less their ops'. A ``none`` edge costs
nothing.

Tables are cached as JSON under a name digested from what they depend on (space and its
sizes, input shape, device, thread count, library versions: :func:`latency_key`), so a run
measures its device once. :func:`check` times random archs end to end and says how well the
table predicts them (Spearman's rho and the mean absolute percentage error).
"""

from __future__ import annotations

import platform
import random
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from nas.cost.sizes import Edge, _chosen, _edge_modules, covering_archs
from nas.io import digest, read_json, write_json_atomic
from nas.spaces import Arch, SearchSpace


def interleaved_ms(
    fns: Sequence[Callable[[], Any]], device: torch.device, warmup: int, repeats: int
) -> list[float]:
    """The median wall time in milliseconds of each of ``fns`` over ``repeats`` calls after
    ``warmup`` untimed ones (the device synchronised around each call). The calls are made
    in turns, an untimed and a timed one of each per round, so that the machine's slow
    spells (other jobs, clock changes) fall on every function alike while each is timed with
    its own data in the caches: timed one after the other, the same 15 DARTS networks ranked
    at Spearman 0.54 between two passes on a 2-core machine, in turns 0.94."""
    sync = _synchronizer(device)
    times: list[list[float]] = [[] for _ in fns]
    with torch.no_grad():
        for fn in fns:
            for _ in range(warmup):
                fn()
        for _ in range(repeats):
            for fn, out in zip(fns, times, strict=True):
                fn()  # untimed: the caches hold this function's data, as when it runs alone
                sync()
                start = time.perf_counter()
                fn()
                sync()
                out.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def _synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for ``device``'s queued work (nothing to wait for on the CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def device_name(device: torch.device) -> str:
    """What names the hardware a table was measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _cpuinfo().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    return f"cpu: {model}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def latency_key(
    space: Mapping[str, Any], shape: Sequence[int], num_classes: int, device: torch.device
) -> dict[str, Any]:
    """What a table depends on: the space (its name and sizes, ``space``), the input shape
    ``[batch, channels, height, width]``, the classes, the device, torch's threads and
    the library versions."""
    return {
        "space": dict(space),
        "input": list(shape),
        "num_classes": num_classes,
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


@dataclass
class LatencyModel:
    """``ms(arch)``: the predicted latency in milliseconds of ``arch``'s standalone network
    for one batch of the table's input shape.

    ``base_ms`` is the fixed part; ``ops[(cell index, cell kind, edge)][op index]`` each op's
    time on its edge (in JSON the edge reads ``"<cell index>|<cell kind>|<edge>"``); ``key``
    what the table was measured for.
    """

    space: SearchSpace
    base_ms: float
    ops: dict[Edge, dict[int, float]]
    key: dict[str, Any]

    def ms(self, arch: Arch) -> float:
        chosen = _chosen(self.space, arch)
        total = self.base_ms
        for (_, kind, e), row in self.ops.items():
            total += row.get(chosen[kind][e], 0.0)  # an op the table lacks is `none`: nothing
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "base_ms": self.base_ms,
            "ops": {
                "|".join(map(str, edge)): {str(j): t for j, t in row.items()}
                for edge, row in self.ops.items()
            },
        }

    @classmethod
    def from_json(cls, space: SearchSpace, record: Mapping[str, Any]) -> LatencyModel:
        ops = {}
        for edge, row in record["ops"].items():
            i, kind, e = edge.split("|")
            ops[(int(i), kind, int(e))] = {int(j): float(t) for j, t in row.items()}
        return cls(space, float(record["base_ms"]), ops, dict(record["key"]))


def measure_latency(
    space: SearchSpace,
    num_classes: int,
    x: torch.Tensor,
    key: Mapping[str, Any],
    warmup: int = 3,
    repeats: int = 20,
    calibration: int = 5,
    seed: int = 0,
) -> LatencyModel:
    """Time every op of ``space``'s standalone networks on input ``x`` (on its device) and
    calibrate the fixed part on ``calibration`` random archs; the table, labelled ``key``.

    Each op is timed where it runs: in the networks of
    :func:`~nas.cost.sizes.covering_archs`, between hooks around each edge's module (the
    median of ``repeats`` forwards of the networks in turns), so its time holds the caches'
    state and the dispatch it has inside a network."""
    ops: dict[Edge, dict[int, float]] = {}
    none = space.op_names.index("none") if "none" in space.op_names else None
    archs = list(covering_archs(space))
    chosen = [_chosen(space, a) for a in archs]
    nets = [_network(space, a, num_classes, x) for a in archs]
    edges = {(n, *edge): m for n, net in enumerate(nets) for edge, m in _edge_modules(net).items()}
    with _timing_edges(edges, x.device) as times:
        interleaved_ms([partial(net, x) for net in nets], x.device, warmup, repeats)
    for (n, i, kind, e), samples in times.items():
        if (j := chosen[n][kind][e]) != none:  # the timed calls: every second after warm-up
            ops.setdefault((i, kind, e), {}).setdefault(
                j, statistics.median(samples[warmup + 1 :: 2])
            )
    model = LatencyModel(space, 0.0, ops, dict(key))
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(calibration)]
    measured = end_to_end_ms(space, archs, num_classes, x, warmup, repeats)
    model.base_ms = statistics.median(m - model.ms(a) for a, m in zip(archs, measured, strict=True))
    return model


@contextmanager
def _timing_edges(
    edges: Mapping[Any, nn.Module], device: torch.device
) -> Iterator[dict[Any, list[float]]]:
    """Within it, every call's milliseconds of each of ``edges``' modules."""
    sync = _synchronizer(device)
    times: dict[Any, list[float]] = {edge: [] for edge in edges}
    started: dict[Any, float] = {}

    def before(edge: Any, module: nn.Module, args: Any) -> None:
        sync()
        started[edge] = time.perf_counter()

    def after(edge: Any, module: nn.Module, args: Any, out: Any) -> None:
        sync()
        times[edge].append((time.perf_counter() - started[edge]) * 1e3)

    hooks = [
        h
        for edge, m in edges.items()
        for h in (
            m.register_forward_pre_hook(partial(before, edge)),
            m.register_forward_hook(partial(after, edge)),
        )
    ]
    try:
        yield times
    finally:
        for h in hooks:
            h.remove()


def end_to_end_ms(
    space: SearchSpace,
    archs: Sequence[Arch],
    num_classes: int,
    x: torch.Tensor,
    warmup: int,
    repeats: int,
) -> list[float]:
    """The measured latency of each of ``archs``' standalone networks on ``x`` (eval, no
    gradients), timed in turns (:func:`interleaved_ms`)."""
    nets = [_network(space, a, num_classes, x) for a in archs]
    return interleaved_ms([partial(net, x) for net in nets], x.device, warmup, repeats)


def _network(space: SearchSpace, arch: Arch, num_classes: int, x: torch.Tensor) -> nn.Module:
    return space.build_subnet(arch, num_classes, x.shape[1]).to(x.device).eval()


def cached_latency(
    path: Path, space: SearchSpace, build: Callable[[], LatencyModel]
) -> LatencyModel:
    """The table stored at ``path`` (a name :func:`latency_file` gives), else ``build()``'s,
    stored there."""
    if path.exists():
        return LatencyModel.from_json(space, read_json(path))
    model = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, model.to_json())
    return model


def latency_file(key: Mapping[str, Any]) -> str:
    """The file name of the table measured for ``key``."""
    return f"latency-{digest(dict(key))}.json"


def check(
    model: LatencyModel,
    num_classes: int,
    x: torch.Tensor,
    archs: Sequence[Arch],
    warmup: int = 3,
    repeats: int = 20,
) -> dict[str, Any]:
    """Time ``archs`` end to end and compare with the table: ``{"spearman", "mape" (mean
    absolute percentage error, %), "predicted_ms", "measured_ms"}``."""
    measured = end_to_end_ms(model.space, archs, num_classes, x, warmup, repeats)
    predicted = [model.ms(a) for a in archs]
    m, p = np.array(measured), np.array(predicted)
    return {
        "spearman": float(spearmanr(p, m).statistic),
        "mape": float(np.mean(np.abs(p - m) / m) * 100),
        "predicted_ms": predicted,
        "measured_ms": measured,
    }
