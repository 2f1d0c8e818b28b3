"""The ``grouped`` backend: a state's out-edges run each convolution op as one grouped op.

In a DARTS cell every state feeds 1-4 edges, and every edge runs the same candidate ops on it.
:class:`GroupedDartsCell` runs the cell by source state: for each separable or dilated
convolution op that every out-edge of a state runs (the dense weights of a DARTS step), the
``k`` edges' copies of the op become one op over ``k * C`` channels, their weights
concatenated (``torch.cat``, so the parameters, their gradients and every state-dict key stay
each edge's own):

* the state's ReLU output, concatenated ``k`` times, goes through one depthwise convolution
  over ``k * C`` channels and one pointwise convolution of ``k`` groups per stage;
* each BatchNorm is one over ``k * C`` channels on the edges' running statistics
  concatenated, copied back to each edge's buffers afterwards (batch statistics are per
  channel, so the values are each edge's own); the op weights are the last BatchNorm's
  weights, as in the ``plain`` backend (:mod:`nas.supernet.plain_ops`).

The grouped outputs of a state are summed over ops once, then split per edge. Pooling,
``skip_connect`` and the factorized reduction run per edge as the ``plain`` backend runs them,
and so does a whole state whose edges run different ops (single paths), that has one
out-edge, or whose edges use partial channels. The values are the ``plain`` backend's up to
rounding (the sums are taken in another order); fewer, larger kernels are the point: on a
GPU a supernet step is bound by kernel launches and small kernels (README, "On a GPU").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.spaces.darts import DARTS_EDGES, STEPS, DartsCell
from nas.spaces.ops import DilConv, SepConv
from nas.supernet.mixed_op import MixedOp, straight_through

__all__ = ["GroupedDartsCell", "grouped_batch_norm"]


def _cat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors))


def grouped_batch_norm(
    bns: Sequence[nn.BatchNorm2d], h: torch.Tensor, rows: Sequence[torch.Tensor] | None = None
) -> torch.Tensor:
    """``cat_e(rows[e] * bns[e](h_e))``, ``h`` the edges' inputs ``h_e`` concatenated on
    channels (without ``rows``: ``cat_e(bns[e](h_e))``), each BatchNorm's running statistics
    updated as its own forward would update them. The BatchNorms share their settings and a
    fixed momentum. ``rows[e]``: ``[C]``, the edge's op weight repeated."""
    bn = bns[0]
    track = bn.running_mean is not None and bn.running_var is not None
    mean = _cat([b.running_mean for b in bns]) if track else None
    var = _cat([b.running_var for b in bns]) if track else None
    scales = rows if rows is not None else [None] * len(bns)
    weight = bias = None
    if bn.affine:  # each edge's affine parameters, scaled by its row
        weight = _cat(
            [b.weight if r is None else r * b.weight for b, r in zip(bns, scales, strict=True)]
        )
        bias = _cat([b.bias if r is None else r * b.bias for b, r in zip(bns, scales, strict=True)])
    elif rows is not None:
        weight = _cat(rows)
    y = F.batch_norm(h, mean, var, weight, bias, bn.training or not track, bn.momentum, bn.eps)
    if bn.training and track:
        with torch.no_grad():
            torch._foreach_copy_(
                [b.running_mean for b in bns] + [b.running_var for b in bns],
                [*mean.split(bn.num_features), *var.split(bn.num_features)],
            )
            torch._foreach_add_([b.num_batches_tracked for b in bns], 1)
    return y


def _conv(convs: Sequence[nn.Conv2d], h: torch.Tensor, groups: int) -> torch.Tensor:
    """The alike convolutions ``convs`` (one per edge) as one convolution of ``groups``
    groups, their weights concatenated."""
    c = convs[0]
    weight = _cat([m.weight for m in convs])
    return F.conv2d(h, weight, None, c.stride, c.padding, c.dilation, groups)


def _dil_conv(ops: Sequence[DilConv], h: torch.Tensor, rows=None) -> torch.Tensor:
    """``ops``' depthwise, pointwise and BatchNorm stages on ``h``: each edge's ``C``
    channels of it in turn, after their ReLU."""
    h = _conv([op[1] for op in ops], h, h.shape[1])  # depthwise: a group per channel
    h = _conv([op[2] for op in ops], h, len(ops))  # pointwise: a group per edge
    return grouped_batch_norm([op[3] for op in ops], h, rows)


def _sep_conv(ops: Sequence[SepConv], h: torch.Tensor, rows) -> torch.Tensor:
    h = _dil_conv([op[0] for op in ops], h)
    return _dil_conv([op[1] for op in ops], h.relu(), rows)


_GROUPED = {DilConv: _dil_conv, SepConv: _sep_conv}


def _groupable(ops: Sequence[nn.Module]) -> bool:
    """Whether ``ops`` (one op of each out-edge) run as one grouped op: separable or dilated
    convolutions made of ReLUs, convolutions and BatchNorms of a fixed momentum (a swapped
    activation, or a cumulative average while recalibrating, runs per edge)."""
    if type(ops[0]) not in _GROUPED:
        return False
    for op in ops:
        for m in op.modules():
            if isinstance(m, nn.BatchNorm2d) and m.momentum is None:
                return False
            if not isinstance(m, nn.ReLU | nn.Conv2d | nn.BatchNorm2d | nn.Sequential):
                return False
    return True


class GroupedDartsCell(DartsCell):
    """A supernet's DARTS cell (edges: ``plain`` :class:`MixedOp`, all 14) run by source
    state, a state's out-edges' convolution ops grouped (module docstring). Same arguments,
    parameters, buffers and function as :class:`DartsCell`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per source state, its out-edges as ``(index into self.edges, edge id, node)``
        self.out_edges = [
            [
                (k, e, DARTS_EDGES[e][0])
                for k, e in enumerate(self.edge_ids)
                if DARTS_EDGES[e][1] == s
            ]
            for s in range(STEPS + 1)
        ]

    def run_nodes(
        self, inputs: list[torch.Tensor], rows: Sequence[Sequence[object]]
    ) -> list[torch.Tensor]:
        weights, active = rows
        states = list(inputs)
        nodes: list[torch.Tensor | None] = [None] * STEPS
        for s, out_edges in enumerate(self.out_edges):
            if s >= 2:  # every edge into node s - 2 comes from an earlier state
                states.append(nodes[s - 2])
            edges = [self.edges[k] for k, _, _ in out_edges]
            ws = [weights[e] for _, e, _ in out_edges]
            acts = [active[e] for _, e, _ in out_edges]
            for (_, _, i), out in zip(
                out_edges, _run_state(edges, states[s], ws, acts), strict=True
            ):
                nodes[i] = out if nodes[i] is None else nodes[i] + out
        states.append(nodes[-1])
        return states


def _run_state(
    edges: Sequence[MixedOp],
    x: torch.Tensor,
    ws: Sequence[torch.Tensor],
    acts: Sequence[Sequence[bool]],
) -> list[torch.Tensor]:
    """The outputs of ``edges``, all reading state ``x``, for their weights and active ops."""
    running = [e.running(a) for e, a in zip(edges, acts, strict=True)]
    alike = len(edges) > 1 and running[0] and all(r == running[0] for r in running)
    if not alike or any(e.partial > 1 for e in edges):  # each edge on its own
        return [e(x, w, a) for e, w, a in zip(edges, ws, acts, strict=True)]
    scales = [e.scales(w) for e, w in zip(edges, ws, strict=True)]
    shared = edges[0].shared
    grouped: torch.Tensor | None = None
    repeated: torch.Tensor | None = None  # the ReLU of x, once per edge on channels
    outs: list[torch.Tensor | None] = [None] * len(edges)
    for o in running[0]:
        ops = [e.ops[o] for e in edges]
        if _groupable(ops):
            if repeated is None:
                relu = x.relu() if shared is None else shared.relu(x)
                repeated = torch.cat([relu] * len(edges), dim=1)
            y = _GROUPED[type(ops[0])](ops, repeated, [s[o] for s in scales])
            grouped = y if grouped is None else grouped.add_(y)
            continue
        for j, e in enumerate(edges):
            y = e.run_op(o, x, scales[j][o])
            outs[j] = y if outs[j] is None else outs[j].add_(y)
    parts = [None] * len(edges) if grouped is None else grouped.split(edges[0].channels, dim=1)
    results = []
    for out, part, w, a in zip(outs, parts, ws, acts, strict=True):
        total = out if part is None else part if out is None else out + part
        results.append(straight_through(total, w, a))
    return results
