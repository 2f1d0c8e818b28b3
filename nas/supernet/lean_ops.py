"""Lean forwards of the op library's modules (``nas.spaces.ops``) for the supernet.

``lean_forward(op, x, scale, shared)`` computes ``scale * op(x)`` (same values, same gradients,
same BatchNorm running statistics) from the op's own parameters, using
:mod:`nas.supernet.functional`: ReLU-(depthwise-pointwise-)convolutions that recompute their
depthwise output in backward, max pooling that recomputes its indices, dilated convolutions run
undilated on sub-grids, and training-mode affine-free BatchNorms that store only their output.
``scale`` (a mixed op's weight of the op) is folded into the op's last BatchNorm as its weight,
so neither the product nor its gradients cost a pass of their own. With ``shared``
(:class:`~nas.supernet.shared.SharedWork`), the ReLU of the input, its sub-grids and the
poolings (with their batch-statistics BatchNorm) are computed once per input for all the ops and
edges that read it. The op modules (and so every parameter and state-dict key) are unchanged;
ops without a lean forward run as is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.spaces.ops import DilConv, FactorizedReduce, Pool, ReLUConvBN, SepConv, cat_channels
from nas.supernet.functional import (
    ConvGeometry,
    batch_norm_saving_output,
    batch_norm_with_stats,
    max_pool2d_recomputing,
    relu_conv2d,
)
from nas.supernet.shared import SharedWork

__all__ = ["lean_batch_norm", "lean_forward"]

Scale = torch.Tensor | None


def _uses_batch_stats(bn: nn.BatchNorm2d) -> bool:
    """Whether ``bn`` normalises with the batch's statistics (as ``nn.BatchNorm2d`` decides)."""
    return bn.training or (bn.running_mean is None and bn.running_var is None)


def _bn_args(
    bn: nn.BatchNorm2d,
) -> tuple[torch.Tensor | None, torch.Tensor | None, bool, float]:
    """``(running_mean, running_var, training, momentum)`` for ``F.batch_norm`` as
    ``nn.BatchNorm2d.forward`` computes them (counting the batch in ``num_batches_tracked``)."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    keep = not bn.training or bn.track_running_stats
    running = (bn.running_mean, bn.running_var) if keep else (None, None)
    return (*running, _uses_batch_stats(bn), momentum)


def lean_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, scale: Scale = None) -> torch.Tensor:
    """``scale * bn(x)`` (``bn(x)`` when ``scale`` is None, storing only the output when ``bn``
    is affine-free and normalises with batch statistics). ``scale``: 0-d tensor, or a dense
    ``[C]`` row of one value (taken as the weight as it is)."""
    running_mean, running_var, training, momentum = _bn_args(bn)
    if scale is None and training and not bn.affine:
        return batch_norm_saving_output(x, running_mean, running_var, momentum, bn.eps)
    weight, bias = bn.weight, bn.bias
    if scale is not None:
        # a dense copy: with the stride-0 view itself, channels_last supernet gradients came
        # out wrong on CPU (torch 2.14)
        weight = scale.expand(x.shape[1]).contiguous() if weight is None else scale * weight
        bias = None if bias is None else scale * bias
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, bn.eps)


def _shared_batch_norm(
    bn: nn.BatchNorm2d, x: torch.Tensor, pooled: torch.Tensor, shared: SharedWork, key: tuple
) -> torch.Tensor:
    """``bn(pooled)`` for the affine-free, batch-statistics ``bn`` of one of several pooling ops
    of ``x`` (memo ``key``): normalised once, and each ``bn``'s running statistics updated from
    the batch's, as its own forward would."""
    y, mean, invstd = shared.memo(
        x, (*key, "bn", bn.eps), lambda: batch_norm_with_stats(pooled, bn.eps)
    )
    running_mean, running_var, _, momentum = _bn_args(bn)
    if running_mean is not None and running_var is not None:
        n = y.numel() // y.shape[1]
        with torch.no_grad():
            var = (invstd.to(running_var.dtype).pow(-2) - bn.eps) * (n / max(n - 1, 1))
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_(var, alpha=momentum)
    return y


def _scaled(y: torch.Tensor, scale: Scale) -> torch.Tensor:
    return y if scale is None else y * scale


def _relu_conv(
    conv: nn.Conv2d,
    x: torch.Tensor,
    pointwise: nn.Conv2d | None = None,
    shared: SharedWork | None = None,
) -> torch.Tensor:
    args = (conv.stride[0], conv.padding[0], conv.dilation[0], conv.groups)
    pw = None if pointwise is None else pointwise.weight
    if shared is None:
        return relu_conv2d(x, conv.weight, *args, pw)
    geo = ConvGeometry.plan(x, conv.kernel_size[0], *args)
    grid = shared.memo(x, ("grid", geo.mode, geo.d), lambda: geo.grid_input(shared.relu(x)))
    y = relu_conv2d(grid, conv.weight, geo.stride, geo.padding, geo.dilation, geo.groups, pw, False)
    return geo.ungrid_output(y, x.shape)


def _relu_conv_bn(op: ReLUConvBN, x: torch.Tensor, scale: Scale, shared: SharedWork | None):
    _, conv, bn = op
    return lean_batch_norm(bn, _relu_conv(conv, x, shared=shared), scale)


def _dil_conv(op: DilConv, x: torch.Tensor, scale: Scale, shared: SharedWork | None):
    _, depthwise, pointwise, bn = op
    return lean_batch_norm(bn, _relu_conv(depthwise, x, pointwise, shared), scale)


def _sep_conv(op: SepConv, x: torch.Tensor, scale: Scale, shared: SharedWork | None):
    first, second = op
    return _dil_conv(second, _dil_conv(first, x, None, shared), scale, None)


def _pool(op: Pool, x: torch.Tensor, scale: Scale, shared: SharedWork | None):
    pool, *bn = op

    def pooled() -> torch.Tensor:
        if isinstance(pool, nn.MaxPool2d):
            return max_pool2d_recomputing(x, pool.kernel_size, pool.stride, pool.padding)
        return pool(x)

    if shared is None:
        y = pooled()
    else:
        key = ("pool", type(pool).__name__, pool.extra_repr())
        y = shared.memo(x, key, pooled)
        if bn and not bn[0].affine and _uses_batch_stats(bn[0]):
            return _scaled(_shared_batch_norm(bn[0], x, y, shared, key), scale)
    return lean_batch_norm(bn[0], y, scale) if bn else _scaled(y, scale)


def _factorized_reduce(
    op: FactorizedReduce, x: torch.Tensor, scale: Scale, shared: SharedWork | None
):
    # conv_2 reads the input shifted by one pixel; on the unpadded view its last row/column
    # (the zero padding of an odd-sized input) is missing, and is zero after ReLU and conv.
    shifted = (
        x[:, :, 1:, 1:] if shared is None else shared.memo(x, "shift", lambda: x[:, :, 1:, 1:])
    )
    a = _relu_conv(op.conv_1, x, shared=shared)
    b = _relu_conv(op.conv_2, shifted, shared=shared)
    b = F.pad(b, (0, a.shape[-1] - b.shape[-1], 0, a.shape[-2] - b.shape[-2]))
    return lean_batch_norm(op.bn, cat_channels([a, b]), scale)


_LEAN_FORWARDS: dict[type[nn.Module], Callable[..., torch.Tensor]] = {
    ReLUConvBN: _relu_conv_bn,
    DilConv: _dil_conv,
    SepConv: _sep_conv,
    Pool: _pool,
    FactorizedReduce: _factorized_reduce,
}


def lean_forward(
    op: nn.Module, x: torch.Tensor, scale: Scale = None, shared: SharedWork | None = None
) -> torch.Tensor:
    """``scale * op(x)`` (``op(x)`` without ``scale``) through its lean forward when its type
    has one, sharing work on ``x`` through ``shared``. ``[B, C, H, W]`` in and out."""
    forward = _LEAN_FORWARDS.get(type(op))
    return _scaled(op(x), scale) if forward is None else forward(op, x, scale, shared)
