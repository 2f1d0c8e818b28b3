"""Elastic inverted-residual blocks: the edges of the macro (``mbv3``) supernet.

One block holds the weights of its largest op (kernel 7, expansion 6); every op is a slice
of them, as in "Once-for-All: Train One Network and Specialize it for Efficient Deployment"
(arXiv 1908.09791): a smaller kernel is the centre of the larger one (with
``kernel_transform``, OFA's learned kernel transformation: a ``k*k x k*k`` matrix per
smaller size applied to the centre, 7 -> 5 -> 3), an expansion ``e`` keeps the first
``mid(e)`` channels of the expanded layer (and of its squeeze-excite), and BatchNorm uses the
leading entries of its parameters and running statistics (:class:`SlicedBatchNorm2d`), so
recalibrating BatchNorm for a subnet touches only that subnet's channels.

``ElasticBlock(x, w, active)`` computes ``sum_k w[k] * op_k(x)`` over the active ops like
:class:`~nas.supernet.MixedOp` (``skip``: the identity), so single paths (one-hot) and the
differentiable strategies (softmax weights) both run it (``skip`` on a stage's first block,
which cannot skip, adds nothing); :meth:`ElasticBlock.single_op`
returns op ``k`` as the space's standalone block (timm's ``InvertedResidual``) with the
sliced weights copied in, computing exactly what the path computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.spaces.mbv3 import SKIP, block, mid_channels, parse_op, se_channels
from nas.supernet.mixed_op import straight_through

_ACT = {"relu": F.relu, "hard_swish": F.hardswish}


class SlicedBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm over ``num_features`` channels that normalises inputs of fewer channels
    ``c`` with its first ``c`` parameters and running statistics (updated in place)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        use_batch = self.training or self.running_mean is None
        stats = self.running_mean is not None and (not self.training or self.track_running_stats)
        return F.batch_norm(
            x,
            self.running_mean[:c] if stats else None,
            self.running_var[:c] if stats else None,
            self.weight[:c] if self.affine else None,
            self.bias[:c] if self.affine else None,
            use_batch,
            factor,
            self.eps,
        )


class ElasticBlock(nn.Module):
    """Every op of one block of the ``mbv3`` space, sharing the largest op's weights.
    ``[B, c_in, H, W] -> [B, c_out, H / stride, W / stride]``; residual where ``stride == 1``
    and ``c_in == c_out`` (only such blocks may be ``skip``)."""

    def __init__(
        self,
        op_names: Sequence[str],
        c_in: int,
        c_out: int,
        stride: int,
        act: str,
        se: bool,
        kernel_transform: bool = False,
    ) -> None:
        super().__init__()
        self.op_names = tuple(op_names)
        self.c_in, self.c_out, self.stride, self.act, self.se = c_in, c_out, stride, act, se
        self.residual = stride == 1 and c_in == c_out
        #: the ops this block runs: ``skip`` only where the block has a residual (elsewhere
        #: it computes nothing, like ``none``: the first block of a stage never skips)
        self._runnable = [k for k, op in enumerate(self.op_names) if op != SKIP or self.residual]
        ops = [parse_op(op) for op in self.op_names if op != SKIP]
        self.kernels = sorted({k for k, _ in ops}, reverse=True)
        mid = max(mid_channels(c_in, e) for _, e in ops)
        k = self.kernels[0]
        self.conv_pw = nn.Conv2d(c_in, mid, 1, bias=False)
        self.bn1 = SlicedBatchNorm2d(mid)
        self.conv_dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn2 = SlicedBatchNorm2d(mid)
        if se:
            self.se_reduce = nn.Conv2d(mid, se_channels(mid), 1)
            self.se_expand = nn.Conv2d(se_channels(mid), mid, 1)
        self.conv_pwl = nn.Conv2d(mid, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        #: OFA's kernel transformation: one ``k*k x k*k`` matrix per smaller kernel size
        self.transforms = nn.ParameterDict(
            {str(s): nn.Parameter(torch.eye(s * s)) for s in self.kernels[1:]}
            if kernel_transform
            else {}
        )

    def kernel(self, size: int, mid: int) -> torch.Tensor:
        """The depthwise kernel ``[mid, 1, size, size]``: the largest kernel's centre,
        transformed step by step when the block has transformations."""
        w = self.conv_dw.weight[:mid]
        for s in self.kernels[1:]:
            if s < size:
                break
            cut = (w.shape[-1] - s) // 2
            w = w[:, :, cut : cut + s, cut : cut + s]
            if str(s) in self.transforms:
                w = F.linear(w.reshape(mid, s * s), self.transforms[str(s)]).reshape(mid, 1, s, s)
        return w

    def run(self, x: torch.Tensor, op: str) -> torch.Tensor:
        """Op ``op``'s output (residual included); ``skip``: ``x``."""
        if op == SKIP:
            return x
        k, e = parse_op(op)
        mid = mid_channels(self.c_in, e)
        act = _ACT[self.act]
        h = act(self.bn1(F.conv2d(x, self.conv_pw.weight[:mid])))
        h = F.conv2d(h, self.kernel(k, mid), None, self.stride, k // 2, 1, mid)
        h = act(self.bn2(h))
        if self.se:
            r = se_channels(mid)
            s = F.conv2d(
                h.mean((2, 3), keepdim=True),
                self.se_reduce.weight[:r, :mid],
                self.se_reduce.bias[:r],
            )
            s = F.conv2d(F.relu(s), self.se_expand.weight[:mid, :r], self.se_expand.bias[:mid])
            h = h * F.hardsigmoid(s)
        h = self.bn3(F.conv2d(h, self.conv_pwl.weight[:, :mid]))
        return h + x if self.residual else h

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: Sequence[bool]) -> torch.Tensor:
        """``w``: ``[ops]`` weights of this block; ``active``: ``w != 0`` as host booleans."""
        if len(w) != len(self.op_names):
            raise ValueError(f"ElasticBlock over {len(self.op_names)} ops got {len(w)} weights")
        ks = [k for k in self._runnable if active[k]]
        if not ks:
            raise ValueError(
                "an mbv3 block needs a non-zero weight on an op it can run (a stage's first "
                "block cannot skip)"
            )
        out = w[ks[0]] * self.run(x, self.op_names[ks[0]])
        for k in ks[1:]:
            out = out + w[k] * self.run(x, self.op_names[k])
        return straight_through(out, w, active)

    @torch.no_grad()
    def single_op(self, k: int) -> nn.Module:
        """Op ``k`` as the space's standalone block with this block's sliced weights."""
        op = self.op_names[k]
        net = block(self.c_in, self.c_out, self.stride, self.act, self.se, op)
        if op == SKIP:
            return net
        size, e = parse_op(op)
        mid = mid_channels(self.c_in, e)
        net.conv_pw.weight.copy_(self.conv_pw.weight[:mid])
        net.conv_dw.weight.copy_(self.kernel(size, mid))
        net.conv_pwl.weight.copy_(self.conv_pwl.weight[:, :mid])
        for mine, theirs in ((self.bn1, net.bn1), (self.bn2, net.bn2)):
            _copy_bn(mine, theirs, mid)
        _copy_bn(self.bn3, net.bn3, self.c_out)
        if self.se:
            r = se_channels(mid)
            net.se.conv_reduce.weight.copy_(self.se_reduce.weight[:r, :mid])
            net.se.conv_reduce.bias.copy_(self.se_reduce.bias[:r])
            net.se.conv_expand.weight.copy_(self.se_expand.weight[:mid, :r])
            net.se.conv_expand.bias.copy_(self.se_expand.bias[:mid])
        return net.to(self.conv_pw.weight).train(self.training)


def _copy_bn(source: nn.BatchNorm2d, target: nn.BatchNorm2d, c: int) -> None:
    target.weight.copy_(source.weight[:c])
    target.bias.copy_(source.bias[:c])
    target.running_mean.copy_(source.running_mean[:c])
    target.running_var.copy_(source.running_var[:c])
    target.num_batches_tracked.copy_(source.num_batches_tracked)
