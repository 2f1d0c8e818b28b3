"""The one library of candidate operations shared by every search space.

The DARTS and NAS-Bench-201 ops differ only in constructor arguments (affine BatchNorm,
running statistics), so each space names its candidates from this module through
:func:`make_op` instead of keeping its own copy.

Every op maps ``[B, C_in, H, W] -> [B, C_out, H / stride, W / stride]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "OPS",
    "DilConv",
    "FactorizedReduce",
    "Pool",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "SepConv",
    "Zero",
    "cat_channels",
    "make_op",
]


class _CatChannels(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *xs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.sizes = [x.shape[1] for x in xs]
        ctx.channels_last = [
            x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() for x in xs
        ]
        return torch.cat(xs, dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        parts = grad.split(ctx.sizes, dim=1)
        return tuple(
            p.contiguous(memory_format=torch.channels_last) if cl else p
            for p, cl in zip(parts, ctx.channels_last, strict=True)
        )


def cat_channels(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(xs, dim=1)`` whose backward hands each channels-last input a dense
    channels-last gradient instead of a channel slice of the output's gradient: such a slice is
    dense in no layout, and kernels reading it take slow paths (BatchNorm's backward on CPU
    ran 15x slower, torch 2.14). Other inputs get the slices, as from ``torch.cat``. Without a
    gradient to hand back (inference, export) it is ``torch.cat`` itself.
    ``[B, C_i, H, W]`` each -> ``[B, sum C_i, H, W]``."""
    if not (torch.is_grad_enabled() and any(x.requires_grad for x in xs)):
        return torch.cat(list(xs), dim=1)
    return _CatChannels.apply(*xs)


def _bn(c: int, affine: bool, track: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, affine=affine, track_running_stats=track)


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BN."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int = 1,
        affine: bool = True,
        track: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            _bn(c_out, affine, track),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
        track: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False
            ),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            _bn(c_out, affine, track),
        )


class SepConv(nn.Sequential):
    """Two stacked dilation-1 :class:`DilConv` blocks; the first carries the stride."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track: bool = True,
    ) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine, track),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine, track),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (strided like the other ops)."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s = self.stride
        return x.new_zeros(b, self.c_out, (h + s - 1) // s, (w + s - 1) // s)


class FactorizedReduce(nn.Module):
    """ReLU, then two stride-2 1x1 convs on offset grids, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even c_out, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = _bn(c_out, affine, track)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(cat_channels([self.conv_1(x), self.conv_2(shifted)]))


class Pool(nn.Sequential):
    """3x3 max or average pooling, optionally followed by a BN (as the DARTS search cell does)."""

    def __init__(self, kind: str, stride: int, c: int, bn: bool, affine: bool, track: bool) -> None:
        if kind == "max":
            pool: nn.Module = nn.MaxPool2d(3, stride=stride, padding=1)
        elif kind == "avg":
            pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        else:
            raise ValueError(f"unknown pooling kind {kind!r}; expected 'max' or 'avg'")
        super().__init__(pool, *([_bn(c, affine, track)] if bn else []))


class ResNetBasicBlock(nn.Module):
    """The residual reduction block between NAS-Bench-201 stages (stride 2, channels up)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        if stride == 2:
            self.downsample: nn.Module = nn.Sequential(
                nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _skip(c: int, stride: int, affine: bool, track: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine, track)


# name -> constructor(C, stride, affine, track, pool_bn).  C_in == C_out for every cell op.
OpFactory = Callable[[int, int, bool, bool, bool], nn.Module]
OPS: dict[str, OpFactory] = {
    "none": lambda c, s, a, t, pbn: Zero(c, s),
    "skip_connect": lambda c, s, a, t, pbn: _skip(c, s, a, t),
    "max_pool_3x3": lambda c, s, a, t, pbn: Pool("max", s, c, pbn, a, t),
    "avg_pool_3x3": lambda c, s, a, t, pbn: Pool("avg", s, c, pbn, a, t),
    "sep_conv_3x3": lambda c, s, a, t, pbn: SepConv(c, c, 3, s, 1, a, t),
    "sep_conv_5x5": lambda c, s, a, t, pbn: SepConv(c, c, 5, s, 2, a, t),
    "dil_conv_3x3": lambda c, s, a, t, pbn: DilConv(c, c, 3, s, 2, 2, a, t),
    "dil_conv_5x5": lambda c, s, a, t, pbn: DilConv(c, c, 5, s, 4, 2, a, t),
    "nor_conv_1x1": lambda c, s, a, t, pbn: ReLUConvBN(c, c, 1, s, 0, 1, a, t),
    "nor_conv_3x3": lambda c, s, a, t, pbn: ReLUConvBN(c, c, 3, s, 1, 1, a, t),
}


def make_op(
    name: str,
    c: int,
    stride: int = 1,
    affine: bool = True,
    track: bool = True,
    pool_bn: bool = False,
) -> nn.Module:
    """Build candidate op ``name`` with ``c`` channels in and out.

    ``affine``/``track`` configure every BatchNorm inside the op; ``pool_bn`` appends a
    BatchNorm after pooling ops (the DARTS search cell does this, the final cell does not).
    """
    try:
        factory = OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {sorted(OPS)}") from None
    return factory(c, stride, affine, track, pool_bn)
