"""The mixed op: one edge of a supernet holding every candidate op.

``MixedOp(x, w, active)`` computes ``sum_k w[k] * op_k(x)`` (the MixedOp of "DARTS:
Differentiable Architecture Search", arXiv 1806.09055) but only over the ops that can
contribute: ``active[k]`` is False where ``w[k]`` is exactly zero, and the ``none`` op (whose
output is zero, so neither it nor its weight's gradient adds anything) is never run. One code
path therefore serves softmax weights (DARTS), one-hot rows (single path: only that op runs)
and straight-through Gumbel one-hots (GDAS).

An op whose weight is exactly zero but requires a gradient (a straight-through one-hot) is
not run either, yet its weight keeps the gradient the reference GDAS code gives it: the weight
is added to the edge's output as a scalar (value 0), so ``dL/dw_k = sum(dL/d out)``.

With ``partial=k`` > 1 the ops run on ``1/k`` of the channels (:mod:`nas.supernet.partial`);
an edge on which nothing runs (only ``none``) still passes nothing, bypass included, so a
one-hot path computes what its standalone subnet does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.spaces.ops import Zero, make_op
from nas.supernet.lean_ops import lean_forward
from nas.supernet.partial import PartialChannels, partial_channels
from nas.supernet.plain_ops import plain_forward
from nas.supernet.shared import SharedWork


def straight_through(out: torch.Tensor, w: torch.Tensor, active: Sequence[bool]) -> torch.Tensor:
    """``out`` plus the weights of the ops not run when ``w`` needs a gradient (a
    straight-through one-hot: their value is 0, their gradient ``sum(dL/d out)`` kept)."""
    if w.requires_grad:
        idle = [k for k, on in enumerate(active) if not on]
        if idle:
            out = out + w[idle].sum()
    return out


class MixedOp(nn.Module):
    """All candidate ops of one edge. ``[B, C, H, W] -> [B, C, H / stride, W / stride]``.

    Each op runs through :func:`~nas.supernet.lean_ops.lean_forward` (``lean``: less memory
    and time on a CPU) or :func:`~nas.supernet.plain_ops.plain_forward` (fewest kernels,
    for a GPU); both fold the op's weight into its last BatchNorm and share work on the input
    with the cell's other edges through ``shared``. :meth:`weighted_sum` is the override point
    of variants that combine the op outputs differently.
    """

    def __init__(
        self,
        op_names: Sequence[str],
        c: int,
        stride: int,
        affine: bool = False,
        track: bool = True,
        pool_bn: bool = True,
        lean: bool = False,
        shared: SharedWork | None = None,
        partial: int = 1,
    ) -> None:
        super().__init__()
        if partial < 1 or c % partial:
            raise ValueError(
                f"space.supernet.partial_channels={partial} must be a positive divisor of every "
                f"edge's channel count (an edge has {c})"
            )
        self.op_names = tuple(op_names)
        c_op = c // partial
        self.ops = nn.ModuleList(make_op(n, c_op, stride, affine, track, pool_bn) for n in op_names)
        self.zero = Zero(c, stride)
        self.channels = c
        self.op_channels = c_op
        self.lean = lean
        self.shared = shared
        self.partial = partial
        self.stride = stride
        self._computed = [k for k, op in enumerate(self.ops) if not isinstance(op, Zero)]

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: Sequence[bool]) -> torch.Tensor:
        """``w``: ``[ops]`` weights of this edge; ``active``: ``w != 0`` as host booleans."""
        if len(w) != len(self.ops):
            raise ValueError(f"MixedOp over {len(self.ops)} ops got {len(w)} weights")
        ks = self.running(active)
        if not ks:  # nothing runs (only 'none'): the edge passes nothing, bypass included
            out = self.zero(x)
        elif self.partial > 1:
            out = partial_channels(
                x, self.partial, self.stride, lambda h: self.weighted_sum(h, w, ks), self.shared
            )
        else:
            out = self.weighted_sum(x, w, ks)
        return straight_through(out, w, active)

    def running(self, active: Sequence[bool]) -> list[int]:
        """The ops that run for ``active`` (``w != 0``): the active ones but ``none``."""
        return [k for k in self._computed if active[k]]

    def single_op(self, k: int) -> nn.Module:
        """Op ``k`` as a standalone module computing what this edge does with a one-hot ``k``."""
        op = self.ops[k]
        if isinstance(op, Zero):
            return self.zero
        if self.partial == 1:
            return op
        return PartialChannels(op, self.partial, self.stride, self.channels)

    def run_op(self, k: int, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """``scale * op_k(x)``; ``scale``: the op's weight, 0-d (lean) or a ``[C]`` row of it
        (plain)."""
        if self.lean:
            return lean_forward(self.ops[k], x, scale, self.shared)
        return plain_forward(self.ops[k], x, scale, self.shared)

    def scales(self, w: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each op's weight as :meth:`run_op` takes it: ``w``'s entries (lean), or each
        repeated over the ops' channels (plain: the weights of their last BatchNorms), made in
        one kernel for the edge and handed back in one (``unbind``: no per-op ``select``)."""
        if self.lean:
            return w.unbind(0)
        return w.unsqueeze(1).expand(-1, self.op_channels).contiguous().unbind(0)

    def weighted_sum(self, x: torch.Tensor, w: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
        """``sum_{k in ks} w[k] * op_k(x)``, accumulated in place into the first term."""
        scales = self.scales(w)
        out = self.run_op(ks[0], x, scales[ks[0]])
        for k in ks[1:]:
            out.add_(self.run_op(k, x, scales[k]))
        return out
