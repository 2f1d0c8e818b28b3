"""Latency of an arch's network on the run's own device, from a lookup table of its ops.

Following once-for-all's latency tables ("Once-for-All: Train One Network and Specialize it
for Efficient Deployment", arXiv 1908.09791): each op of the space's standalone network (the
one ``retrain`` trains and a user deploys) is timed once on the input it gets there
(:func:`~nas.export.cost.standalone_ops`; ops of one description and input shape are timed
once), in eval mode without gradients, at the run's batch size and image size on the run's
device. An arch's latency is the sum of its ops' plus a fixed part (stem, cell
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from nas.export.cost import Edge, _chosen, standalone_ops
from nas.io import digest, read_json, write_json_atomic
from nas.spaces import Arch, SearchSpace

#: the JSON key of an edge of the table
EdgeKey = str


def time_ms(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    """The median wall time of ``fn()`` in milliseconds over ``repeats`` calls after
    ``warmup`` untimed ones (the device synchronised around each call)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


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

    ``base_ms`` is the fixed part; ``ops[edge][op index]`` each op's time on its edge (the
    edge as ``"<cell index>|<cell kind>|<edge>"``); ``key`` what the table was measured for.
    """

    space: SearchSpace
    base_ms: float
    ops: dict[EdgeKey, dict[int, float]]
    key: dict[str, Any]

    def ms(self, arch: Arch) -> float:
        chosen = _chosen(self.space, arch)
        total = self.base_ms
        for edge, row in self.ops.items():
            _, kind, e = edge.split("|")
            j = chosen[kind][int(e)]
            total += row.get(j, 0.0)  # an op the table lacks is `none`: nothing
        return total

    def fastest_ms(self) -> float:
        """A lower bound of :meth:`ms` over the space: every edge at its fastest op (``none``
        where the space has it)."""
        none = self.space.op_names.index("none") if "none" in self.space.op_names else None
        total = self.base_ms
        for row in self.ops.values():
            total += 0.0 if none is not None else min(row.values())
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "base_ms": self.base_ms,
            "ops": {e: {str(j): t for j, t in row.items()} for e, row in self.ops.items()},
        }

    @classmethod
    def from_json(cls, space: SearchSpace, record: Mapping[str, Any]) -> LatencyModel:
        ops = {e: {int(j): float(t) for j, t in row.items()} for e, row in record["ops"].items()}
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
    calibrate the fixed part on ``calibration`` random archs; the table, labelled ``key``."""
    device = x.device
    in_channels = x.shape[1]
    found, _ = standalone_ops(space, num_classes, in_channels, x.cpu()[:1])
    memo: dict[tuple[str, tuple[int, ...]], float] = {}
    ops: dict[EdgeKey, dict[int, float]] = {}
    for (i, kind, e), row in found.items():
        for j, (op, shape) in row.items():
            if space.op_names[j] == "none":
                continue
            full = (len(x), *shape[1:])
            memo_key = (repr(op), full)
            if memo_key not in memo:
                op = op.to(device).eval()
                inp = torch.randn(full, device=device)
                memo[memo_key] = time_ms(lambda op=op, inp=inp: op(inp), device, warmup, repeats)
            ops.setdefault(_edge_key((i, kind, e)), {})[j] = memo[memo_key]
    model = LatencyModel(space, 0.0, ops, dict(key))
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(calibration)]
    measured = [end_to_end_ms(space, a, num_classes, x, warmup, repeats) for a in archs]
    model.base_ms = statistics.median(m - model.ms(a) for a, m in zip(archs, measured, strict=True))
    return model


def end_to_end_ms(
    space: SearchSpace, arch: Arch, num_classes: int, x: torch.Tensor, warmup: int, repeats: int
) -> float:
    """The measured latency of ``arch``'s standalone network on ``x`` (eval, no gradients)."""
    net: nn.Module = space.build_subnet(arch, num_classes, x.shape[1]).to(x.device).eval()
    return time_ms(lambda: net(x), x.device, warmup, repeats)


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
    measured = [end_to_end_ms(model.space, a, num_classes, x, warmup, repeats) for a in archs]
    predicted = [model.ms(a) for a in archs]
    m, p = np.array(measured), np.array(predicted)
    return {
        "spearman": float(spearmanr(p, m).statistic),
        "mape": float(np.mean(np.abs(p - m) / m) * 100),
        "predicted_ms": predicted,
        "measured_ms": measured,
    }


def _edge_key(edge: Edge) -> EdgeKey:
    i, kind, e = edge
    return f"{i}|{kind}|{e}"
