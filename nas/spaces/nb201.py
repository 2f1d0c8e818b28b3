"""NAS-Bench-201 cell space ("NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", arXiv 2001.00326).

The cell is a DAG over 4 nodes; node ``j`` sums one op applied to every earlier node ``i``,
giving 6 edges in the order of the official string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: (0,1), (0,2), (1,2), (0,3), (1,3), (2,3).
Each edge holds one of 5 ops, so the space has 5**6 = 15,625 cells. An ``Arch`` is the tuple
of the 6 op names in that order.

Many cells compute the same function: ops feeding a node that reaches no output, sums in
another order, ``skip_connect`` chains. :meth:`NB201Space.canonical` maps a cell to one
representative of its class (5,425 classes of isomorphic graphs of live ops), the
de-isomorphism that "Evaluating Efficient Performance Estimators of Neural Architectures"
(arXiv 2008.03064) finds to help one-shot ranking.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from functools import cache
from typing import ClassVar

import torch
from torch import nn

from nas.spaces.base import ArchError, OpWeights, SearchSpace, per_edge, register_space
from nas.spaces.ops import ResNetBasicBlock, make_op

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NB201Arch = tuple[str, str, str, str, str, str]


def _op_graph(arch: Sequence[str]) -> tuple[dict[int, tuple[str, tuple]], tuple]:
    """The ops of ``arch`` that reach the output, ``{edge: (op, inputs)}``, and the output's
    terms. A term is ``"x"`` (the cell's input) or the edge id of an op; a node is the sum
    of its terms: ``none`` and zero inputs add none, ``skip_connect`` passes its input's
    terms on, any other op adds itself."""
    terms: list[tuple] = [("x",)]
    ops: dict[int, tuple[str, tuple]] = {}
    for j in range(1, 4):
        node: list = []
        for e, ((i, dst), op) in enumerate(zip(NB201_EDGES, arch, strict=True)):
            if dst != j or op == "none" or not terms[i]:
                continue
            if op == "skip_connect":
                node.extend(terms[i])
            else:
                ops[e] = (op, terms[i])
                node.append(e)
        terms.append(tuple(node))
    live: set[int] = set()
    stack = [t for t in terms[3] if t != "x"]
    while stack:
        e = stack.pop()
        if e not in live:
            live.add(e)
            stack.extend(t for t in ops[e][1] if t != "x")
    return {e: ops[e] for e in live}, terms[3]


def function_key(arch: Sequence[str]) -> tuple:
    """Equal for two cells exactly when their graphs of live ops are isomorphic (op kinds,
    inputs and sums matched; checked exhaustively on the 15,625 cells): every op is written
    as its expression tree with the trees of the ops it feeds, the output's terms last. An
    op of a zero input counts as zero, as NAS-Bench-201's own unique strings assume."""
    ops, out = _op_graph(arch)
    trees: dict[object, str] = {"x": "x"}

    def tree(t: object) -> str:
        if t not in trees:
            op, inputs = ops[t]  # type: ignore[index]
            trees[t] = f"{op}({'+'.join(sorted(tree(u) for u in inputs))})"
        return trees[t]

    feeds: dict[object, list[str]] = {e: [] for e in ops}
    for e, (_, inputs) in ops.items():
        for u in inputs:
            if u != "x":
                feeds[u].append(tree(e))
    for t in out:
        if t != "x":
            feeds[t].append("out")
    nodes = sorted((tree(e), tuple(sorted(feeds[e]))) for e in ops)
    return (*nodes, ("out", tuple(sorted(tree(t) for t in out))))


@cache
def _representatives() -> dict[tuple, NB201Arch]:
    """``{function key: representative}``: the class member with the fewest ops that are not
    ``none`` (least compute), ties to the first in op order."""
    reps: dict[tuple, NB201Arch] = {}
    for arch in itertools.product(NB201_OPS, repeat=len(NB201_EDGES)):  # in op order
        key = function_key(arch)
        best = reps.get(key)
        if best is None or arch.count("none") > best.count("none"):
            reps[key] = arch  # type: ignore[assignment]
    return reps


class NB201Cell(nn.Module):
    """The NAS-Bench-201 cell: ``node_j = sum_{i<j} edge_ij(node_i)``; output is node 3.

    ``edges`` holds one module per entry of :data:`NB201_EDGES`; each is called as
    ``edge(x)`` or, when ``weights`` is given, ``edge(x, weights[e])``.
    """

    kind = "cell"

    def __init__(self, edges: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(edges) != len(NB201_EDGES):
            raise ValueError(f"an NB201 cell has {len(NB201_EDGES)} edges, got {len(edges)}")
        self.edges = nn.ModuleList(edges)

    def forward(self, x: torch.Tensor, *edge_args: Sequence[object]) -> torch.Tensor:
        rows = per_edge(edge_args)
        nodes = [x]
        e = 0
        for j in range(1, 4):
            total = None
            for i in range(j):
                out = self.edges[e](nodes[i], *(a[e] for a in rows))
                total = out if total is None else total + out
                e += 1
            nodes.append(total)
        return nodes[-1]


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton: stem, 3 stages of ``n_cells`` cells with a residual
    reduction block between stages (C, 2C, 4C channels), BN-ReLU, global pool, linear head.

    ``make_edge(c, e)`` builds the module for edge ``e`` of a cell with ``c`` channels; the
    standalone net passes the chosen op, the supernet a mixed op. ``forward(x, *edge_args)``
    forwards per-edge arguments (e.g. op weights) to every cell.
    """

    def __init__(
        self,
        make_edge,
        num_classes: int,
        in_channels: int = 3,
        c: int = 16,
        n_cells: int = 5,
        bn_affine: bool = True,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        layers: list[nn.Module] = []
        c_prev = c
        for stage in range(3):
            c_stage = c * 2**stage
            if stage > 0:
                layers.append(ResNetBasicBlock(c_prev, c_stage, 2))
            layers += [NB201Cell([make_edge(c_stage, e) for e in range(6)]) for _ in range(n_cells)]
            c_prev = c_stage
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(
            nn.BatchNorm2d(c_prev, affine=bn_affine), nn.ReLU(inplace=True)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def features(self, x: torch.Tensor, *edge_args: Sequence[object]) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, *edge_args) if isinstance(layer, NB201Cell) else layer(x)
        return self.lastact(x)

    def forward(self, x: torch.Tensor, *edge_args: Sequence[object]) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x, *edge_args)).flatten(1))


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 topology space. ``c`` and ``n_cells`` size the networks (paper: 16, 5)."""

    op_names = NB201_OPS
    cell_edges: ClassVar[dict[str, int]] = {"cell": len(NB201_EDGES)}
    edge_nodes: ClassVar[dict[str, tuple[int, ...]]] = {"cell": tuple(j for _, j in NB201_EDGES)}
    independent_edges = True

    def __init__(self, c: int = 16, n_cells: int = 5) -> None:
        self.c = c
        self.n_cells = n_cells

    def to_str(self, arch: NB201Arch) -> str:
        self._check(arch)
        nodes, e = [], 0
        for j in range(1, 4):
            nodes.append("|" + "|".join(f"{arch[e + i]}~{i}" for i in range(j)) + "|")
            e += j
        return "+".join(nodes)

    def from_str(self, text: str) -> NB201Arch:
        parts = text.strip().split("+")
        if len(parts) != 3:
            raise ArchError(f"an NB201 string has 3 '+'-separated nodes, got {text!r}")
        ops: list[str] = []
        for j, node in enumerate(parts, start=1):
            tokens = [t for t in node.split("|") if t]
            if len(tokens) != j:
                raise ArchError(f"node {j} of {text!r} must have {j} inputs, got {len(tokens)}")
            for i, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if src != str(i):
                    raise ArchError(f"token {token!r} of node {j} must read '<op>~{i}' in {text!r}")
                if op not in self.op_names:
                    raise ArchError(
                        f"node {j}, input {i} of {text!r}: op {op!r} is not one of "
                        f"{list(self.op_names)}"
                    )
                ops.append(op)
        arch = tuple(ops)
        self._check(arch)
        return arch  # type: ignore[return-value]

    def _check(self, arch: Sequence[str]) -> None:
        if len(arch) != len(NB201_EDGES):
            raise ArchError(f"an NB201 arch has {len(NB201_EDGES)} ops, got {len(arch)}: {arch!r}")
        for op in arch:
            self.op_index(op)

    def sample(self, rng: random.Random) -> NB201Arch:
        return tuple(rng.choice(NB201_OPS) for _ in NB201_EDGES)  # type: ignore[return-value]

    def canonical(self, arch: NB201Arch) -> NB201Arch:
        self._check(arch)
        return _representatives()[function_key(arch)]

    def distinct_archs(self) -> list[NB201Arch]:
        return list(_representatives().values())

    def neighbours(self, arch: NB201Arch) -> list[NB201Arch]:
        return [
            (*arch[:e], op, *arch[e + 1 :])  # type: ignore[misc]
            for e in range(len(arch))
            for op in NB201_OPS
            if op != arch[e]
        ]

    def distance(self, a: NB201Arch, b: NB201Arch) -> int:
        return sum(x != y for x, y in zip(a, b, strict=True))

    def one_hot(self, arch: NB201Arch) -> dict[str, torch.Tensor]:
        self._check(arch)
        w = torch.zeros(len(NB201_EDGES), len(NB201_OPS))
        for e, op in enumerate(arch):
            w[e, NB201_OPS.index(op)] = 1.0
        return {"cell": w}

    def cell_graphs(
        self, arch: NB201Arch
    ) -> dict[str, tuple[list[str], list[tuple[str, str, str]]]]:
        self._check(arch)
        edges = [(str(i), str(j), op) for (i, j), op in zip(NB201_EDGES, arch, strict=True)]
        return {"cell": (["0", "1", "2", "3"], [e for e in edges if e[2] != "none"])}

    def derive(self, weights: OpWeights) -> NB201Arch:
        self.check_weights(weights)
        best = weights["cell"].detach().float().argmax(dim=1).tolist()
        return tuple(NB201_OPS[k] for k in best)  # type: ignore[return-value]

    def build_subnet(self, arch: NB201Arch, num_classes: int, in_channels: int = 3) -> NB201Network:
        self._check(arch)
        return NB201Network(
            lambda c, e: make_op(arch[e], c),
            num_classes=num_classes,
            in_channels=in_channels,
            c=self.c,
            n_cells=self.n_cells,
        )
