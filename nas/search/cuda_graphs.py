"""Parts of a training step replayed as CUDA graphs (``search.cuda_graph``).

A supernet step launches thousands of small kernels; on a GPU their launches, not the math,
bound it (README, "On a GPU"). :class:`GraphedCalls` runs a function of tensors eagerly for a
few warm-up calls (cuDNN's autotuning and lazy initialisations happen there, on a side
stream), then captures it once as a ``torch.cuda.CUDAGraph`` with static copies of its inputs
("whole-network capture" in the CUDA-graphs notes of the PyTorch docs) and from then on copies
each call's inputs into them and replays the graph; the outputs are the graph's static tensors,
overwritten by the next replay. The functions run under the caller's autocast state with its
weight cache off (a cache filled inside a capture would be freed under the graph).

What the captured function may do: launch kernels on tensors whose addresses stay put
(parameters, buffers, existing ``.grad`` tensors, which a backward accumulates into), with
every Python-side decision (which ops run, whether a module trains) fixed at capture and every
changing value (a schedule's) in a device tensor. It must not read a value back to the host.
Inputs of another shape (a last, smaller batch) run eagerly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Tensors = tuple[torch.Tensor, ...]


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: Tensors
    outputs: Tensors


class GraphedCalls:
    """Named functions ``fn(*inputs) -> tuple of tensors``, each captured after ``warmup``
    eager calls and replayed from then on, each graph in its own memory pool (graphs that
    share one must be replayed in the order they were captured).

    Args:
        warmup: eager calls of each name before its capture (>= 1: the first call's lazy
            initialisations cannot happen inside a capture).
    """

    def __init__(self, warmup: int = 3) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        self.warmup = warmup
        self._calls: dict[str, int] = {}
        self._graphs: dict[str, _Captured] = {}

    def captured(self, name: str) -> bool:
        return name in self._graphs

    def __call__(self, name: str, fn: Callable[..., Tensors], *inputs: torch.Tensor) -> Tensors:
        entry = self._graphs.get(name)
        if entry is None and self._calls.get(name, 0) >= self.warmup:
            entry = self._capture(name, fn, inputs)
        if entry is None or not _same_shapes(entry.inputs, inputs):
            self._calls[name] = self._calls.get(name, 0) + 1
            with _uncached_autocast():
                return _on_side_stream(fn, inputs) if entry is None else fn(*inputs)
        for static, value in zip(entry.inputs, inputs, strict=True):
            static.copy_(value, non_blocking=True)
        entry.graph.replay()
        return entry.outputs

    def _capture(
        self, name: str, fn: Callable[..., Tensors], inputs: Sequence[torch.Tensor]
    ) -> _Captured:
        static = tuple(t.clone() for t in inputs)
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with _uncached_autocast(), torch.cuda.graph(graph):
            outputs = fn(*static)
        entry = self._graphs[name] = _Captured(graph, static, tuple(outputs))
        return entry


def _uncached_autocast() -> torch.autocast:
    """CUDA autocast as the caller set it (on or off, its dtype), with no weight cache."""
    return torch.autocast(
        "cuda",
        dtype=torch.get_autocast_dtype("cuda"),
        enabled=torch.is_autocast_enabled("cuda"),
        cache_enabled=False,
    )


def _same_shapes(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype for x, y in zip(a, b, strict=False)
    )


def _on_side_stream(fn: Callable[..., Tensors], inputs: Sequence[torch.Tensor]) -> Tensors:
    """``fn(*inputs)`` on a side stream, as warm-up calls before a capture run."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        outputs = fn(*inputs)
    torch.cuda.current_stream().wait_stream(side)
    return outputs
