"""A macro space of MobileNetV3-style inverted-residual blocks with per-block choices
("Searching for MobileNetV3", arXiv 1905.02244; the elastic space of "Once-for-All: Train
One Network and Specialize it for Efficient Deployment", arXiv 1908.09791).

The network: a stem (3x3 conv, BN, hard-swish), a fixed depthwise-separable block, then
``len(widths)`` stages of up to :data:`MAX_DEPTH` inverted-residual blocks, then a 1x1 conv
to ``6 * widths[-1]`` channels, global pooling, a 1x1 conv to ``head`` features and the
classifier. Each block chooses its depthwise kernel (3, 5, 7) and expansion ratio (3, 4, 6);
each stage its depth (2, 3, 4: the first blocks). Activations and squeeze-excite per stage
follow MobileNetV3-Large (ReLU then hard-swish; SE in stages 2, 4, 5).

In the space protocol every block is an edge of kind ``block`` whose ops are
``skip`` (the block is past its stage's depth) and ``k{kernel}e{expand}``; the ``Arch`` is the
tuple of every block's op. Its string lists each stage's blocks, stages split by ``|``:
``k3e4-k5e6|k7e3-k3e3-k5e4|...``. Edits (neighbours, distance): one block's kernel or
expansion, or one stage's depth by one block (a block added with any op).

The standalone network is built from timm's MobileNetV3 blocks (``InvertedResidual``,
``DepthwiseSeparableConv``, ``SqueezeExcite``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

import torch
from timm.layers import BatchNormAct2d, make_divisible
from timm.models._efficientnet_blocks import (
    DepthwiseSeparableConv,
    InvertedResidual,
    SqueezeExcite,
)
from torch import nn

from nas.spaces.base import ArchError, OpWeights, SearchSpace, per_edge, register_space

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
MAX_DEPTH = max(DEPTHS)
SKIP = "skip"
MBV3_OPS = (SKIP, *(f"k{k}e{e}" for k, e in itertools.product(KERNELS, EXPANDS)))
#: MobileNetV3-Large's activation and squeeze-excite of its five searchable stages
STAGE_ACTS = ("relu", "relu", "hard_swish", "hard_swish", "hard_swish")
STAGE_SE = (False, True, False, True, True)
#: MobileNetV3-Large's widths of those stages
LARGE_WIDTHS = (24, 40, 80, 112, 160)
MBV3Arch = tuple[str, ...]
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hard_swish": nn.Hardswish}


def parse_op(op: str) -> tuple[int, int]:
    """``(kernel, expand)`` of an op name ``k{kernel}e{expand}``."""
    return int(op[1]), int(op[3])


def mid_channels(c_in: int, expand: int) -> int:
    """The expanded width of a block (``c_in * expand`` rounded to a multiple of 8)."""
    return make_divisible(c_in * expand, 8)


def se_channels(mid: int) -> int:
    """The squeeze-excite bottleneck of ``mid`` channels (a quarter, multiple of 8)."""
    return make_divisible(mid / 4, 8)


def squeeze_excite(mid: int, **_block_args: object) -> nn.Module:
    """MobileNetV3's squeeze-excite of ``mid`` channels (:func:`se_channels` in the middle,
    ReLU, hard-sigmoid gate) as timm's blocks call it (their activation is not the SE's)."""
    return SqueezeExcite(
        mid, rd_channels=se_channels(mid), force_act_layer=nn.ReLU, gate_layer="hard_sigmoid"
    )


def block(c_in: int, c_out: int, stride: int, act: str, se: bool, op: str) -> nn.Module:
    """The standalone inverted-residual block ``op`` (``skip``: identity) with timm's block
    (residual when ``stride == 1`` and ``c_in == c_out``)."""
    if op == SKIP:
        return nn.Identity()
    kernel, expand = parse_op(op)
    return InvertedResidual(
        c_in,
        c_out,
        dw_kernel_size=kernel,
        stride=stride,
        exp_ratio=mid_channels(c_in, expand) / c_in,
        act_layer=ACTIVATIONS[act],
        se_layer=squeeze_excite if se else None,
    )


class MBV3Stage(nn.Module):
    """One stage: its blocks are the edges of kind ``block`` with ids ``edge_ids``; called
    as ``edge(x)`` or, with per-edge arguments, ``edge(x, *(arg[e] for arg in args))``."""

    kind = "block"

    def __init__(self, edges: Sequence[nn.Module], edge_ids: Sequence[int]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edges)
        self.edge_ids = tuple(edge_ids)

    def forward(self, x: torch.Tensor, *edge_args: Sequence[object]) -> torch.Tensor:
        rows = per_edge(edge_args)
        for e, edge in zip(self.edge_ids, self.edges, strict=True):
            x = edge(x, *(a[e] for a in rows))
        return x


class MBV3Network(nn.Module):
    """Stem, first block, the searchable stages (``cells``), head and classifier.

    ``make_block(c_in, c_out, stride, act, se, e)`` builds block ``e``; ``forward(x,
    *edge_args)`` passes per-block arguments (e.g. op weights) to every stage.
    """

    def __init__(
        self,
        make_block: Callable[[int, int, int, str, bool, int], nn.Module],
        num_classes: int,
        in_channels: int,
        space: MBV3Space,
    ) -> None:
        super().__init__()
        s = space
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, s.stem, 3, s.stem_stride, 1, bias=False),
            BatchNormAct2d(s.stem, act_layer=nn.Hardswish),
        )
        self.first = DepthwiseSeparableConv(s.stem, s.stem, act_layer=nn.ReLU)
        stages, c_in, e = [], s.stem, 0
        for i, (c_out, stride) in enumerate(zip(s.widths, s.strides, strict=True)):
            act, se = STAGE_ACTS[i], STAGE_SE[i]
            blocks = []
            for d in range(MAX_DEPTH):
                blocks.append(make_block(c_in, c_out, stride if d == 0 else 1, act, se, e + d))
                c_in = c_out
            stages.append(MBV3Stage(blocks, range(e, e + MAX_DEPTH)))
            e += MAX_DEPTH
        self.cells = nn.ModuleList(stages)
        last = 6 * c_in
        self.final = nn.Sequential(
            nn.Conv2d(c_in, last, 1, bias=False), BatchNormAct2d(last, act_layer=nn.Hardswish)
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(last, s.head, 1), nn.Hardswish(), nn.Flatten()
        )
        self.classifier = nn.Linear(s.head, num_classes)

    def forward(self, x: torch.Tensor, *edge_args: Sequence[object]) -> torch.Tensor:
        x = self.first(self.stem(x))
        for stage in self.cells:
            x = stage(x, *edge_args)
        return self.classifier(self.head(self.final(x)))


@register_space("mbv3")
class MBV3Space(SearchSpace):
    """MobileNetV3-style macro space; the sizes are ``widths`` and ``strides`` of the stages
    (one each, at most five: the MobileNetV3-Large stages), the ``stem`` width and stride and
    the ``head`` features. Defaults: 32x32 inputs (CIFAR); for 224x224 inputs use
    ``stem_stride=2, strides=(2, 2, 2, 1, 2)``."""

    op_names = MBV3_OPS

    def __init__(
        self,
        widths: Sequence[int] = LARGE_WIDTHS,
        strides: Sequence[int] = (1, 2, 2, 1, 2),
        stem: int = 16,
        stem_stride: int = 1,
        head: int = 1280,
    ) -> None:
        self.widths, self.strides = tuple(int(w) for w in widths), tuple(int(s) for s in strides)
        if not 1 <= len(self.widths) <= len(STAGE_ACTS) or len(self.strides) != len(self.widths):
            raise ValueError(
                f"widths and strides must list 1 to {len(STAGE_ACTS)} stages alike; got "
                f"widths={list(self.widths)}, strides={list(self.strides)}"
            )
        if min(self.widths) < 1 or min(self.strides) < 1 or min(stem, stem_stride, head) < 1:
            raise ValueError(
                f"widths, strides, stem, stem_stride and head must be positive; got "
                f"widths={list(self.widths)}, strides={list(self.strides)}, stem={stem}, "
                f"stem_stride={stem_stride}, head={head}"
            )
        self.stem, self.stem_stride, self.head = int(stem), int(stem_stride), int(head)
        self.n_blocks = MAX_DEPTH * len(self.widths)
        self.cell_edges = {"block": self.n_blocks}
        self.edge_nodes = {"block": tuple(range(1, self.n_blocks + 1))}

    # -- codecs ---------------------------------------------------------------------------
    def stages(self, arch: MBV3Arch) -> list[list[str]]:
        """Each stage's active blocks' ops."""
        return [
            [op for op in arch[i : i + MAX_DEPTH] if op != SKIP]
            for i in range(0, self.n_blocks, MAX_DEPTH)
        ]

    def to_str(self, arch: MBV3Arch) -> str:
        self._check(arch)
        return "|".join("-".join(ops) for ops in self.stages(arch))

    def from_str(self, text: str) -> MBV3Arch:
        stages = text.strip().split("|")
        if len(stages) != len(self.widths):
            raise ArchError(
                f"an mbv3 string of this space has {len(self.widths)} '|'-separated stages, "
                f"got {len(stages)} in {text!r}"
            )
        arch: list[str] = []
        for i, stage in enumerate(stages, start=1):
            ops = stage.split("-") if stage else []
            if len(ops) not in DEPTHS:
                raise ArchError(f"stage {i} of {text!r} has {len(ops)} blocks; depths: {DEPTHS}")
            for op in ops:
                if op not in MBV3_OPS[1:]:
                    raise ArchError(
                        f"stage {i} of {text!r}: block {op!r} is not k<kernel>e<expand> with "
                        f"kernel in {KERNELS} and expand in {EXPANDS}"
                    )
            arch += ops + [SKIP] * (MAX_DEPTH - len(ops))
        return tuple(arch)

    def _check(self, arch: Sequence[str]) -> None:
        if len(arch) != self.n_blocks:
            raise ArchError(f"an mbv3 arch of this space has {self.n_blocks} blocks, got {arch!r}")
        for i in range(0, self.n_blocks, MAX_DEPTH):
            stage = arch[i : i + MAX_DEPTH]
            for op in stage:
                self.op_index(op)
            depth = sum(op != SKIP for op in stage)
            if depth not in DEPTHS or any(op == SKIP for op in stage[:depth]):
                raise ArchError(
                    f"stage {i // MAX_DEPTH + 1} of {arch!r} must be 2 to 4 blocks followed "
                    f"by skips, got {stage!r}"
                )

    # -- sampling and neighbourhoods --------------------------------------------------------
    def sample(self, rng: random.Random) -> MBV3Arch:
        """Each stage's depth, then each block's kernel and expansion, uniformly (the draws
        of once-for-all and BigNAS; deep stages are not favoured for having more archs)."""
        arch: list[str] = []
        for _ in self.widths:
            depth = rng.choice(DEPTHS)
            arch += [rng.choice(MBV3_OPS[1:]) for _ in range(depth)]
            arch += [SKIP] * (MAX_DEPTH - depth)
        return tuple(arch)

    def neighbours(self, arch: MBV3Arch) -> list[MBV3Arch]:
        self._check(arch)
        out: list[MBV3Arch] = []
        for i, op in enumerate(arch):
            if op == SKIP:
                continue
            kernel, expand = parse_op(op)
            edits = [f"k{k}e{expand}" for k in KERNELS if k != kernel]
            edits += [f"k{kernel}e{e}" for e in EXPANDS if e != expand]
            out += [(*arch[:i], new, *arch[i + 1 :]) for new in edits]
        for s, ops in enumerate(self.stages(arch)):
            start = s * MAX_DEPTH
            if len(ops) > min(DEPTHS):  # drop the last block
                j = start + len(ops) - 1
                out.append((*arch[:j], SKIP, *arch[j + 1 :]))
            if len(ops) < MAX_DEPTH:  # add a block, any op
                j = start + len(ops)
                out += [(*arch[:j], new, *arch[j + 1 :]) for new in MBV3_OPS[1:]]
        return out

    def distance(self, a: MBV3Arch, b: MBV3Arch) -> int:
        total = 0
        for sa, sb in zip(self.stages(a), self.stages(b), strict=True):
            total += abs(len(sa) - len(sb))
            for x, y in zip(sa, sb, strict=False):  # the blocks both keep
                (kx, ex), (ky, ey) = parse_op(x), parse_op(y)
                total += (kx != ky) + (ex != ey)
        return total

    # -- encodings ------------------------------------------------------------------------
    def one_hot(self, arch: MBV3Arch) -> dict[str, torch.Tensor]:
        self._check(arch)
        w = torch.zeros(self.n_blocks, len(MBV3_OPS))
        for e, op in enumerate(arch):
            w[e, MBV3_OPS.index(op)] = 1.0
        return {"block": w}

    def op_mask(self) -> dict[str, torch.Tensor]:
        """A stage's first two blocks never skip."""
        mask = torch.ones(self.n_blocks, len(MBV3_OPS), dtype=torch.bool)
        for i in range(0, self.n_blocks, MAX_DEPTH):
            mask[i : i + min(DEPTHS), MBV3_OPS.index(SKIP)] = False
        return {"block": mask}

    def derive(self, weights: OpWeights) -> MBV3Arch:
        """Per block the strongest op (a stage's first two blocks never ``skip``); a stage
        ends at its first ``skip``."""
        self.check_weights(weights)
        w = weights["block"].detach().float().masked_fill(~self.op_mask()["block"], -torch.inf)
        best = w.argmax(dim=1).tolist()
        arch: list[str] = []
        for i in range(0, self.n_blocks, MAX_DEPTH):
            ops = []
            for d in range(MAX_DEPTH):
                if MBV3_OPS[best[i + d]] == SKIP:
                    break
                ops.append(MBV3_OPS[best[i + d]])
            arch += ops + [SKIP] * (MAX_DEPTH - len(ops))
        return tuple(arch)

    def cell_graphs(
        self, arch: MBV3Arch
    ) -> dict[str, tuple[list[str], list[tuple[str, str, str]]]]:
        """The blocks as one chain ``in -> s1b1 -> ... -> out``: one edge per active block."""
        nodes, edges = ["in"], []
        for s, ops in enumerate(self.stages(arch), start=1):
            for b, op in enumerate(ops, start=1):
                nodes.append(f"s{s}b{b}")
                edges.append((nodes[-2], nodes[-1], op))
        nodes[-1] = "out"
        edges[-1] = (edges[-1][0], "out", edges[-1][2])
        return {"block": (nodes, edges)}

    # -- networks -------------------------------------------------------------------------
    def build_subnet(self, arch: MBV3Arch, num_classes: int, in_channels: int = 3) -> MBV3Network:
        self._check(arch)
        return MBV3Network(
            lambda c_in, c_out, stride, act, se, e: block(c_in, c_out, stride, act, se, arch[e]),
            num_classes,
            in_channels,
            self,
        )


__all__ = ["MBV3_OPS", "MBV3Network", "MBV3Space", "block"]
