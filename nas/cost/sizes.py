"""Parameters and FLOPs of an arch's network, from per-op tables: no network per arch.

A network of an arch is a fixed part (stem, cell preprocessing, reduction blocks, head) plus
the chosen op of each edge. The tables hold the fixed part's cost and each op's cost on each
edge (parameters, and FLOPs of one image from ``torch.utils.flop_counter``, which counts
convolutions and matrix products), so an arch's cost is a sum and the constraints of a
search cost microseconds per arch. A ``none`` edge costs nothing (a zero op, or no op at all).

Two networks of an arch have tables: the single path of a supernet, as exported with the
supernet's weights (:func:`~nas.export.subnet.build_subnet`), and the standalone network the
space builds, which ``retrain`` trains (``space.build_subnet``). They differ in size (the
``space.supernet`` and ``space.subnet`` sizes) and, after a PC-DARTS search, in width: the
single path runs each op on ``1/K`` of the channels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas.spaces import Arch, SearchSpace, searchable_cells
from nas.supernet import MixedOp, build_supernet

_PLAIN = {"backend": "plain", "channels_last": False, "compile": False}

#: ``(params, flops)``
Cost = tuple[int, int]
#: an edge of a network: ``(cell index, cell kind, edge)``
Edge = tuple[int, str, int]
#: each edge's cost per op: ``{edge: {op index: cost}}``
Table = dict[Edge, dict[int, Cost]]
#: op costs measured, by the op's description and input shape
Memo = dict[tuple[str, torch.Size], Cost]


def count_flops(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """FLOPs of ``net(x)`` (convolutions and matrix products), counted by torch."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return int(counter.get_total_flops())


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class CostModel:
    """``params(arch)`` and ``flops(arch)`` of ``arch``'s network for ``image_size`` x
    ``image_size`` inputs: with ``supernet_options``, the single-path network exported from
    the supernet built with them (partial channels included); without, the standalone network
    of the space (sized by its ``space.subnet`` keys), which ``retrain`` trains."""

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int,
        in_channels: int,
        image_size: int,
        supernet_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.space = space
        self.none = space.op_names.index("none") if "none" in space.op_names else None
        x = torch.zeros(1, in_channels, image_size, image_size)
        if supernet_options is None:
            self.base, self.table = standalone_tables(space, num_classes, in_channels, x)
        else:
            self.base, self.table = single_path_tables(
                space, num_classes, in_channels, x, supernet_options
            )

    def _cost(self, arch: Arch) -> Cost:
        chosen = _chosen(self.space, arch)
        ops = [
            row[j]
            for (_, kind, e), row in self.table.items()
            if (j := chosen[kind][e]) != self.none
        ]
        return _plus(self.base, ops)

    def params(self, arch: Arch) -> int:
        return self._cost(arch)[0]

    def flops(self, arch: Arch) -> int:
        return self._cost(arch)[1]


def single_path_tables(
    space: SearchSpace,
    num_classes: int,
    in_channels: int,
    x: torch.Tensor,
    supernet_options: Mapping[str, Any],
) -> tuple[Cost, Table]:
    """The fixed part's cost and the table of the single paths of the supernet built with
    ``supernet_options``, measured in one pass of input ``x`` through it with every op on:
    each op as its single path runs it (:meth:`MixedOp.single_op`: on ``1/K`` of the
    channels after a PC-DARTS search), on the input its mixed op gets."""
    supernet = build_supernet(space, num_classes, in_channels, **{**supernet_options, **_PLAIN})
    supernet.eval()
    mixed: dict[Edge, MixedOp] = _edge_modules(supernet.net)
    ones = {kind: torch.ones(e, len(space.op_names)) for kind, e in space.cell_edges.items()}
    with _recording_inputs(mixed) as inputs:
        total = count_flops(lambda t: supernet(t, ones), x)
    memo: Memo = {}
    table = {
        edge: {j: _op_cost(m.single_op(j), inputs[edge], memo) for j in range(len(m.op_names))}
        for edge, m in mixed.items()
    }
    ops = [cost for row in table.values() for cost in row.values()]
    return _less((count_params(supernet), total), ops), table


def standalone_tables(
    space: SearchSpace, num_classes: int, in_channels: int, x: torch.Tensor
) -> tuple[Cost, Table]:
    """The fixed part's cost and the table of the space's standalone networks, measured on
    the networks of :func:`covering_archs` with input ``x``."""
    table: Table = {}
    memo: Memo = {}
    for arch in covering_archs(space):
        net = space.build_subnet(arch, num_classes, in_channels).eval()
        edges = _edge_modules(net)
        with torch.no_grad(), _recording_inputs(edges) as inputs:
            net(x)
        chosen = _chosen(space, arch)
        for (i, kind, e), op in edges.items():
            row = table.setdefault((i, kind, e), {})
            j = chosen[kind][e]
            if j not in row:
                row[j] = _op_cost(op, inputs[(i, kind, e)], memo)
    # the fixed part: the last network less its ops
    ops = [table[(i, kind, e)][chosen[kind][e]] for i, kind, e in edges]
    return _less((count_params(net), count_flops(net, x)), ops), table


def covering_archs(space: SearchSpace) -> Iterator[Arch]:
    """Archs that together hold every op but ``none`` on every edge of ``space``: each is
    derived from op weights that favour the (edge, op) pairs the archs before it lack."""
    lacking = {kind: m.float() for kind, m in space.op_mask().items()}
    if "none" in space.op_names:
        for w in lacking.values():
            w[:, space.op_names.index("none")] = 0
    while any(w.any() for w in lacking.values()):
        arch = space.derive({kind: 1 + w for kind, w in lacking.items()})
        held = space.one_hot(arch)
        if not any((w * held[kind]).any() for kind, w in lacking.items()):
            raise ValueError(f"space {space.name!r} derives no arch holding the ops left to cost")
        for kind, w in lacking.items():
            w *= 1 - held[kind]
        yield arch


def _chosen(space: SearchSpace, arch: Arch) -> dict[str, list[int]]:
    """The op index ``arch`` picks on each edge, per cell kind."""
    return {kind: w.argmax(1).tolist() for kind, w in space.one_hot(arch).items()}


def _edge_modules(net: nn.Module) -> dict[Edge, Any]:
    """The module on each edge of ``net`` (a space's network)."""
    return {
        (i, kind, e): m
        for i, cell, kind, edge_ids in searchable_cells(net)
        for e, m in zip(edge_ids, cell.edges, strict=True)
    }


def _op_cost(op: nn.Module, shape: torch.Size, memo: Memo) -> Cost:
    """``op``'s cost on inputs of ``shape``; ops of one description (``repr``: kind, channels,
    stride, ...) cost the same on one shape, so ``memo`` measures each once."""
    key = (repr(op), shape)
    if key not in memo:
        memo[key] = count_params(op), count_flops(op, torch.zeros(shape))
    return memo[key]


def _plus(cost: Cost, ops: Iterable[Cost]) -> Cost:
    ops = list(ops)
    return cost[0] + sum(p for p, _ in ops), cost[1] + sum(f for _, f in ops)


def _less(cost: Cost, ops: Iterable[Cost]) -> Cost:
    ops = list(ops)
    return cost[0] - sum(p for p, _ in ops), cost[1] - sum(f for _, f in ops)


@contextmanager
def _recording_inputs(modules: Mapping[Edge, nn.Module]) -> Iterator[dict[Edge, torch.Size]]:
    """Within it, the shape of the input each of ``modules`` gets."""
    shapes: dict[Edge, torch.Size] = {}

    def record(edge: Edge, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        shapes[edge] = args[0].shape

    hooks = [m.register_forward_pre_hook(partial(record, edge)) for edge, m in modules.items()]
    try:
        yield shapes
    finally:
        for h in hooks:
            h.remove()
