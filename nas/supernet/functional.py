"""Memory-lean autograd functions for the supernet's ops: the same values and gradients as
the plain PyTorch layers, with less stored for backward and dilated convolutions run fast.

* :func:`relu_conv2d` is ``conv2d(relu(x), weight)``, optionally followed by a 1x1 convolution
  (the DARTS ReLU-depthwise-pointwise block), that stores ``x`` (which the graph keeps anyway:
  it is a node's state or a BatchNorm output) instead of ``relu(x)`` and the depthwise output,
  recomputing those (cheap) in backward.
* :func:`max_pool2d_recomputing` stores its input instead of the argmax indices.
* :func:`batch_norm_saving_output` is a training-mode, affine-free BatchNorm that stores only its
  output ``y = (x - mean) * invstd`` (which the next op stores anyway) instead of its input.
* Dilated convolutions (the DARTS ``dil_conv`` ops) are slow in oneDNN and cuDNN; a dilation-``d``,
  stride-1, same-padded convolution equals an undilated one applied to each of the ``d * d``
  polyphase sub-grids of the input, and a stride-``d`` one equals an undilated one on sub-grid
  ``(0, 0)``. :func:`relu_conv2d` runs them that way, exactly.
* On CPU, oneDNN's weight gradient of a 5x5 depthwise convolution is 2-9x slower than a 3x3
  one's; :func:`relu_conv2d` assembles it from 3-wide blocks on shifted inputs.

Both functions are autocast-safe: under ``torch.autocast`` they compute in the autocast dtype
and return gradients in the dtypes of their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import FunctionCtx

__all__ = [
    "ConvGeometry",
    "batch_norm_saving_output",
    "batch_norm_with_stats",
    "max_pool2d_recomputing",
    "memory_format_of",
    "relu_conv2d",
]


@dataclass(frozen=True)
class ConvGeometry:
    """How ``conv2d(x, w, stride, padding, dilation, groups)`` runs: ``mode`` ``'direct'``, or
    undilated on the ``d * d`` polyphase sub-grids (``'phases'``, stride 1) or unstrided on
    sub-grid ``(0, 0)`` (``'subgrid'``: stride = dilation = ``d``, or a 1x1 kernel of stride
    ``d``; the latter also avoids a wrong weight gradient of oneDNN's strided 1x1 convolution
    on channels_last tensors in torch 2.14)."""

    mode: str
    d: int
    stride: int
    padding: int
    dilation: int
    groups: int

    @classmethod
    def plan(
        cls, x: torch.Tensor, kernel: int, stride: int, padding: int, dilation: int, groups: int
    ) -> ConvGeometry:
        d = dilation
        same = d > 1 and kernel % 2 == 1 and padding == d * (kernel - 1) // 2
        if same and stride == 1 and x.shape[-2] % d == 0 and x.shape[-1] % d == 0:
            return cls("phases", d, 1, (kernel - 1) // 2, 1, groups)
        if same and stride == d:
            return cls("subgrid", d, 1, (kernel - 1) // 2, 1, groups)
        if kernel == 1 and padding == 0 and stride > 1:
            return cls("subgrid", stride, 1, 0, 1, groups)
        return cls("direct", 1, stride, padding, dilation, groups)

    @property
    def args(self) -> tuple[list[int], list[int], list[int]]:
        return [self.stride] * 2, [self.padding] * 2, [self.dilation] * 2

    def grid_input(self, x: torch.Tensor) -> torch.Tensor:
        """The input the undilated convolution reads (differentiable, in ``x``'s layout)."""
        if self.mode == "phases":
            return _to_phases(x, self.d)
        if self.mode == "subgrid":
            return x[:, :, :: self.d, :: self.d].contiguous(memory_format=memory_format_of(x))
        return x

    def grid_shape(self, size: torch.Size) -> tuple[int, ...]:
        """The shape of :meth:`grid_input` of an input of shape ``size``."""
        b, c, h, w = size
        if self.mode == "phases":
            return (self.d * self.d * b, c, h // self.d, w // self.d)
        if self.mode == "subgrid":
            return (b, c, -(-h // self.d), -(-w // self.d))
        return tuple(size)

    def ungrid_input_grad(self, g: torch.Tensor, size: torch.Size) -> torch.Tensor:
        if self.mode == "phases":
            return _from_phases(g, self.d, size)
        if self.mode == "subgrid":
            full = g.new_zeros(size).contiguous(memory_format=memory_format_of(g))
            full[:, :, :: self.d, :: self.d] = g
            return full
        return g

    def ungrid_output(self, y: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """The convolution's output on the full grid (differentiable)."""
        return _from_phases(y, self.d, size) if self.mode == "phases" else y

    def grid_output_grad(self, g: torch.Tensor) -> torch.Tensor:
        return _to_phases(g, self.d) if self.mode == "phases" else g


def _to_phases(t: torch.Tensor, d: int) -> torch.Tensor:
    """``[B, C, H, W] -> [d*d*B, C, H/d, W/d]`` (channels_last): the polyphase sub-grids."""
    b, c, h, w = t.shape
    t = t.permute(0, 2, 3, 1).reshape(b, h // d, d, w // d, d, c)
    return t.permute(2, 4, 0, 1, 3, 5).reshape(d * d * b, h // d, w // d, c).permute(0, 3, 1, 2)


def _from_phases(t: torch.Tensor, d: int, size: torch.Size) -> torch.Tensor:
    """Inverse of :func:`_to_phases`, to batch and spatial size of ``size`` (channels of ``t``)."""
    b, _, h, w = size
    c = t.shape[1]
    t = t.permute(0, 2, 3, 1).reshape(d, d, b, h // d, w // d, c)
    return t.permute(2, 3, 0, 4, 1, 5).reshape(b, h, w, c).permute(0, 3, 1, 2)


def memory_format_of(t: torch.Tensor) -> torch.memory_format:
    """``channels_last`` when ``t`` is dense in that layout (and not also in the default one)."""
    cl = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def _autocast_dtype(t: torch.Tensor) -> torch.dtype:
    device = t.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return t.dtype


class _ReLUConv2d(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        pointwise: torch.Tensor | None,
        stride: int,
        padding: int,
        dilation: int,
        groups: int,
        relu: bool,
    ) -> torch.Tensor:
        dtype = _autocast_dtype(x)
        x, w = x.to(dtype), weight.to(dtype)
        pw = None if pointwise is None else pointwise.to(dtype)
        geo = ConvGeometry.plan(x, weight.shape[-1], stride, padding, dilation, groups)
        ctx.geo, ctx.relu = geo, relu
        ctx.dtypes = (weight.dtype, None if pw is None else pointwise.dtype)
        ctx.save_for_backward(x, w, pw)
        with torch.autocast(x.device.type, enabled=False):
            y = torch.conv2d(geo.grid_input(x.relu() if relu else x), w, None, *geo.args, groups)
            if pw is not None:  # 1x1: applies on the sub-grids as on the full grid
                y = torch.conv2d(y, pw)
            return geo.ungrid_output(y, x.shape)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor):  # type: ignore[override]
        x, w, pw = ctx.saved_tensors
        geo, (w_dtype, pw_dtype) = ctx.geo, ctx.dtypes
        need_x, need_w, need_pw = ctx.needs_input_grad[:3]  # need_pw is False without pw
        g = geo.grid_output_grad(grad.to(x.dtype))
        # the input gradients read only the weights: with frozen weights (an alpha step),
        # neither the ReLU nor the depthwise output is recomputed, and placeholders carry
        # the shapes
        if need_w or need_pw:
            r = geo.grid_input(x.relu() if ctx.relu else x)
        else:
            r = _placeholder(geo.grid_shape(x.shape), x)
        gpw = None
        if pw is not None:
            if need_pw:
                z = torch.conv2d(r, w, None, *geo.args, geo.groups)
            else:
                z = _placeholder((g.shape[0], w.shape[0], *g.shape[2:]), x)
            g, gpw, _ = _conv_backward(g, z, pw, _POINTWISE, 1, (True, need_pw))
        blocked = need_w and _weight_grad_in_blocks(r, w, geo)
        native_w = need_w and not blocked
        gx, gw = None, None
        if need_x or native_w:
            gx, gw, _ = _conv_backward(g, r, w, geo.args, geo.groups, (need_x, native_w))
        if blocked:
            gw = _depthwise_weight_grad(g, r, w.shape[-1], geo.stride)
        if gx is not None:
            gx = geo.ungrid_input_grad(gx, x.shape)
            if ctx.relu:
                gx = torch.ops.aten.threshold_backward(gx, x, 0)
        gw = None if gw is None else gw.to(w_dtype)
        gpw = None if gpw is None else gpw.to(pw_dtype)
        return gx, gw, gpw, None, None, None, None, None


_POINTWISE = ([1, 1], [0, 0], [1, 1])


def _placeholder(shape: tuple[int, ...] | torch.Size, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` in ``like``'s dtype, device and layout."""
    return torch.empty(
        shape, dtype=like.dtype, device=like.device, memory_format=memory_format_of(like)
    )


def _conv_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    w: torch.Tensor,
    args: tuple[list[int], list[int], list[int]],
    groups: int,
    need: tuple[bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
    return torch.ops.aten.convolution_backward(
        grad, x, w, None, *args, False, [0, 0], groups, [*need, False]
    )


def _weight_grad_in_blocks(x: torch.Tensor, w: torch.Tensor, geo: ConvGeometry) -> bool:
    """Whether the weight gradient of this depthwise convolution is computed by
    :func:`_depthwise_weight_grad`: on CPU, oneDNN's is 2-9x slower for square kernels wider
    than 3 (5x5) than for 3-wide ones (torch 2.14)."""
    k = w.shape[-1]
    return (
        x.device.type == "cpu"
        and geo.groups == x.shape[1] == w.shape[0]
        and w.shape[-2] == k > 3
        and k % 2 == 1
        and geo.dilation == 1
        and geo.padding == k // 2
    )


def _depthwise_weight_grad(
    grad: torch.Tensor, x: torch.Tensor, k: int, stride: int
) -> torch.Tensor:
    """The weight gradient ``[C, 1, k, k]`` of the depthwise, same-padded ``k x k``
    convolution of ``x`` (``[B, C, H, W]``, odd ``k``) with ``stride``, assembled from blocks
    three columns wide (and three rows high when the kernel is taller than the input): a block
    of kernel offsets ``j0 .. j0 + 2`` is the weight gradient of a 3-wide kernel over ``x``
    shifted by ``j0`` (``F.pad`` crops and pads). Overlapping blocks agree."""
    p = k // 2
    starts = [*range(-p, p - 2, 3), p - 2]
    c = x.shape[1]
    gw = x.new_empty(c, 1, k, k)
    row_blocks = [(-p, k)] if x.shape[-2] >= k else [(i0, 3) for i0 in starts]
    for i0, kh in row_blocks:
        rows = () if kh == k else (-i0, i0 + 2)
        for j0 in starts:
            shifted = torch.nn.functional.pad(x, (-j0, j0 + 2, *rows))
            block = x.new_empty(c, 1, kh, 3)  # its shape only
            args = ([stride] * 2, [p if kh == k else 0, 0], [1, 1])
            _, gw_block, _ = _conv_backward(grad, shifted, block, args, c, (False, True))
            gw[:, :, i0 + p : i0 + p + kh, j0 + p : j0 + p + 3] = gw_block
    return gw


def relu_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    pointwise: torch.Tensor | None = None,
    relu: bool = True,
) -> torch.Tensor:
    """``conv2d(relu(x), weight, None, stride, padding, dilation, groups)``, then the bias-free
    1x1 convolution ``pointwise`` when given; stores ``x`` only (the ReLU and the first
    convolution are recomputed in backward). ``relu=False`` skips the ReLU (for an ``x`` that
    is already a ReLU output, shared by several convolutions).

    ``x``: ``[B, C_in, H, W]``; ``weight``: ``[C_mid, C_in / groups, k, k]`` (square kernel);
    ``pointwise``: ``[C_out, C_mid, 1, 1]``.
    """
    return _ReLUConv2d.apply(x, weight, pointwise, stride, padding, dilation, groups, relu)


class _MaxPool2dRecomputing(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, kernel: int, stride: int, padding: int):
        ctx.args = ([kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], False)
        ctx.save_for_backward(x)
        return torch.max_pool2d(x, *ctx.args)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        _, indices = torch.ops.aten.max_pool2d_with_indices(x, *ctx.args)
        gx = torch.ops.aten.max_pool2d_with_indices_backward(grad, x, *ctx.args, indices)
        return gx, None, None, None


def max_pool2d_recomputing(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """``max_pool2d(x, kernel, stride, padding)`` that stores ``x`` (kept anyway: a node's state)
    instead of the argmax indices (int64, twice the output's size in fp32), recomputing them in
    backward."""
    return _MaxPool2dRecomputing.apply(x, kernel, stride, padding)


class _BatchNormSavingOutput(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        running_mean: torch.Tensor | None,
        running_var: torch.Tensor | None,
        momentum: float,
        eps: float,
    ) -> torch.Tensor:
        y, mean, invstd = torch.native_batch_norm(
            x, None, None, running_mean, running_var, True, momentum, eps
        )
        ctx.eps = eps
        ctx.save_for_backward(y, invstd)
        ctx.mark_non_differentiable(mean, invstd)
        return y, mean, invstd

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor, *_stats: torch.Tensor):  # type: ignore[override]
        y, invstd = ctx.saved_tensors
        # native backward with input y, mean 0, invstd 1 and scale invstd is exactly
        # invstd * (g - mean(g) - y * mean(g * y)), the gradient of (x - mean) * invstd.
        gx = torch.ops.aten.native_batch_norm_backward(
            grad.to(y.dtype),
            y,
            invstd,
            None,
            None,
            torch.zeros_like(invstd),
            torch.ones_like(invstd),
            True,
            ctx.eps,
            [True, False, False],
        )[0]
        return gx, None, None, None, None


def batch_norm_saving_output(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    momentum: float,
    eps: float,
) -> torch.Tensor:
    """Training-mode, affine-free ``batch_norm`` over ``[B, C, H, W]`` that stores its output.

    Updates ``running_mean``/``running_var`` (when given) with ``momentum`` as
    :func:`torch.nn.functional.batch_norm` does.
    """
    return _BatchNormSavingOutput.apply(x, running_mean, running_var, momentum, eps)[0]


def batch_norm_with_stats(
    x: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`batch_norm_saving_output` without running statistics, also returning the batch's
    ``mean`` and ``invstd = 1 / sqrt(biased var + eps)`` (``[C]`` each, not differentiable) so
    that the caller can update several modules' running statistics from one normalisation."""
    return _BatchNormSavingOutput.apply(x, None, None, 0.0, eps)
