"""Partial channel connections ("PC-DARTS: Partial Channel Connections for Memory-Efficient
Architecture Search", arXiv 1907.05737).

An edge runs its ops on the first ``C / k`` channels of its input only; the other channels
bypass the ops (max-pooled 2x2 on a reduction edge, so the shapes agree) and the two parts are
concatenated and channel-shuffled in ``k`` groups, so that the next edge samples other
channels. ``[B, C, H, W] -> [B, C, H / stride, W / stride]``.

ONNX has no channel shuffle: while exporting, the shuffle is the reshape and transpose that
compute it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.spaces.ops import cat_channels
from nas.supernet.functional import memory_format_of
from nas.supernet.shared import SharedWork

__all__ = ["PartialChannels", "channel_shuffle", "partial_channels"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``F.channel_shuffle(x, groups)``, exportable to ONNX."""
    if torch.onnx.is_in_onnx_export():
        return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)
    return F.channel_shuffle(x, groups)


def partial_channels(
    x: torch.Tensor,
    k: int,
    stride: int,
    ops: Callable[[torch.Tensor], torch.Tensor],
    shared: SharedWork | None = None,
    channels: int | None = None,
) -> torch.Tensor:
    """``shuffle_k(cat(ops(x[:, :C/k]), bypass(x[:, C/k:])))``; ``shared`` makes every edge
    that reads ``x`` get the same head slice (so their shared work on it is done once);
    ``channels``, when given, is ``C`` as a constant (an exported graph's shapes stay static)."""
    c = (x.shape[1] if channels is None else channels) // k
    layout = memory_format_of(x)

    def slice_head() -> torch.Tensor:  # dense, in x's layout: the ops' kernels want it so
        return x[:, :c].contiguous(memory_format=layout)

    head = slice_head() if shared is None else shared.memo(x, ("pc_head", c), slice_head)
    rest = x[:, c:]
    if stride > 1:
        rest = F.max_pool2d(rest, stride, stride, ceil_mode=True)
    out = channel_shuffle(cat_channels([ops(head), rest]), k)
    return out.contiguous(memory_format=layout)


class PartialChannels(nn.Module):
    """One op on partial channels: the single-path form of a partial-channel mixed op of
    ``channels`` channels."""

    def __init__(self, op: nn.Module, k: int, stride: int, channels: int) -> None:
        super().__init__()
        self.op, self.k, self.stride, self.channels = op, k, stride, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return partial_channels(x, self.k, self.stride, self.op, channels=self.channels)

    def extra_repr(self) -> str:
        return f"k={self.k}, stride={self.stride}, channels={self.channels}"
