"""Plain forwards of the op library's modules for the supernet: fewest kernels, for a GPU.

``plain_forward(op, x, row, shared)`` computes ``row * op(x)`` (same values, same gradients,
same BatchNorm running statistics) with the op's own modules (cuDNN's convolutions and
BatchNorms), launching fewer kernels than running the op and multiplying:

* ``row`` (the mixed op's weight of the op, as a ``[C]`` row of one value) is the weight of
  the op's last BatchNorm, so the product and its gradients cost no kernels of their own (the
  BatchNorm's backward computes the weight's gradient anyway);
* with ``shared`` (:class:`~nas.supernet.shared.SharedWork`), the ReLU of the input, its
  shifted copy (factorized reduction) and its pooling are computed once per state for all the
  ops and edges that read it; each pooling op's BatchNorm still runs as its own module, so
  its running statistics are its own.

On a GPU a supernet step is bound by kernel launches (README, "On a GPU"), so kernels, not
bytes, are what this saves; the lean forwards (:mod:`nas.supernet.lean_ops`) trade the other
way for a few CPU cores. The op modules (and so every parameter and state-dict key) are
unchanged; ops without a plain forward run as is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.spaces.ops import DilConv, FactorizedReduce, Pool, ReLUConvBN, SepConv, cat_channels
from nas.supernet.lean_ops import lean_batch_norm
from nas.supernet.shared import SharedWork

__all__ = ["plain_forward"]

Row = torch.Tensor | None


def _act(act: nn.Module, x: torch.Tensor, shared: SharedWork | None) -> torch.Tensor:
    """``act(x)``: the op's activation module; a ReLU once per state through ``shared``."""
    if type(act) is not nn.ReLU:  # another activation put in its place runs as it is
        return act(x)
    return x.relu() if shared is None else shared.relu(x)


def _last_bn(bn: nn.BatchNorm2d, h: torch.Tensor, row: Row) -> torch.Tensor:
    """``row * bn(h)`` with ``row`` as the BatchNorm's weight (``bn(h)`` without a row)."""
    return bn(h) if row is None else lean_batch_norm(bn, h, row)


def _relu_conv_bn(op: ReLUConvBN, x: torch.Tensor, row: Row, shared: SharedWork | None):
    act, conv, bn = op
    return _last_bn(bn, conv(_act(act, x, shared)), row)


def _dil_conv(op: DilConv, x: torch.Tensor, row: Row, shared: SharedWork | None):
    act, depthwise, pointwise, bn = op
    return _last_bn(bn, pointwise(depthwise(_act(act, x, shared))), row)


def _sep_conv(op: SepConv, x: torch.Tensor, row: Row, shared: SharedWork | None):
    first, second = op
    return _dil_conv(second, _dil_conv(first, x, None, shared), row, None)


def _pool(op: Pool, x: torch.Tensor, row: Row, shared: SharedWork | None):
    pool, *bn = op
    key = ("pool", type(pool).__name__, pool.extra_repr())
    y = pool(x) if shared is None else shared.memo(x, key, lambda: pool(x))
    if bn:
        return _last_bn(bn[0], y, row)
    return _scaled(y, row)


def _factorized_reduce(op: FactorizedReduce, x: torch.Tensor, row: Row, shared: SharedWork | None):
    r = _act(op.relu, x, shared)

    def shifted() -> torch.Tensor:
        return F.pad(r[:, :, 1:, 1:], (0, 1, 0, 1))

    s = shifted() if shared is None else shared.memo(r, "shifted", shifted)
    return _last_bn(op.bn, cat_channels([op.conv_1(r), op.conv_2(s)]), row)


def _scaled(y: torch.Tensor, row: Row) -> torch.Tensor:
    return y if row is None else y * row.view(1, -1, 1, 1)


_PLAIN_FORWARDS: dict[type[nn.Module], Callable[..., torch.Tensor]] = {
    ReLUConvBN: _relu_conv_bn,
    DilConv: _dil_conv,
    SepConv: _sep_conv,
    Pool: _pool,
    FactorizedReduce: _factorized_reduce,
}


def plain_forward(
    op: nn.Module, x: torch.Tensor, row: Row = None, shared: SharedWork | None = None
) -> torch.Tensor:
    """``row * op(x)`` per channel (``op(x)`` without ``row``) through its plain forward when
    its type has one, sharing work on ``x`` through ``shared``. ``x``: ``[B, C, H, W]``;
    ``row``: ``[C_out]``, one value repeated (a weight of the op). Without ``row`` the result
    may be the shared work itself (a pooling without BatchNorm): not to be changed in place."""
    forward = _PLAIN_FORWARDS.get(type(op))
    return _scaled(op(x), row) if forward is None else forward(op, x, row, shared)
