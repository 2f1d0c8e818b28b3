"""The DARTS cell space ("DARTS: Differentiable Architecture Search", arXiv 1806.09055).

A cell has two inputs (the outputs of the two previous cells, states 0 and 1) and 4
intermediate nodes; node ``i`` (state ``i + 2``) may read every earlier state, giving
2 + 3 + 4 + 5 = 14 possible edges. A discrete cell keeps 2 inputs per node, each with one
of the 7 non-``none`` ops, and outputs the concatenation of the 4 nodes. Normal and
reduction cells are searched separately.

An ``Arch`` is a :class:`Genotype` of the DARTS paper's code with tuple fields; genes within
a node are kept sorted by input so that equal cells compare and hash equal.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from nas.spaces.base import ArchError, OpWeights, SearchSpace, per_edge, register_space
from nas.spaces.ops import FactorizedReduce, ReLUConvBN, cat_channels, make_op

DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
STEPS = 4
CELL_KINDS = ("normal", "reduce")
#: ``DARTS_EDGES[e] = (node, input_state)``; node ``i`` is state ``i + 2``
DARTS_EDGES = tuple((i, j) for i in range(STEPS) for j in range(i + 2))
EDGE_INDEX = {edge: e for e, edge in enumerate(DARTS_EDGES)}

Gene = tuple[str, int]


class Genotype(NamedTuple):
    """As in the DARTS paper's code: ``normal``/``reduce`` hold 2 ``(op, input)`` genes per node."""

    normal: tuple[Gene, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Gene, ...]
    reduce_concat: tuple[int, ...]


def _canonical_genes(genes: Sequence[Sequence[object]], kind: str) -> tuple[Gene, ...]:
    """Validate a cell's genes and sort each node's pair by input index."""
    if len(genes) != 2 * STEPS:
        raise ArchError(f"{kind} cell needs {2 * STEPS} genes (2 per node), got {len(genes)}")
    out: list[Gene] = []
    for i in range(STEPS):
        pair = []
        for g, gene in enumerate(genes[2 * i : 2 * i + 2], start=2 * i):
            if len(gene) != 2:
                raise ArchError(f"{kind} gene {g} {gene!r} must be (op, input)")
            op, j = gene
            if op not in DARTS_OPS or op == "none":
                raise ArchError(
                    f"{kind} gene {g} {gene!r} (node {i}): op must be one of {list(DARTS_OPS[1:])}"
                )
            if not isinstance(j, int) or not 0 <= j < i + 2:
                raise ArchError(f"{kind} gene {gene!r} of node {i}: input must be in 0..{i + 1}")
            pair.append((str(op), int(j)))
        if pair[0][1] == pair[1][1]:
            raise ArchError(f"{kind} node {i} reads input {pair[0][1]} twice: {pair}")
        out += sorted(pair, key=lambda g: (g[1], g[0]))
    return tuple(out)


def _literal(node: ast.AST) -> object:
    """Evaluate the literals of a genotype string, including ``range(a, b)`` and ``[...]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        return list(range(*[_literal(a) for a in node.args]))  # type: ignore[misc]
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Constant):
        return node.value
    raise ArchError(f"unexpected expression in genotype string: {ast.dump(node)}")


class DartsCell(nn.Module):
    """A DARTS cell over any subset of the 14 edges.

    ``make_edge(c, stride, e)`` builds the module of edge ``e``; ``edge_ids`` lists the present
    edges (all 14 in the supernet, the 8 genes in a standalone net). States 0 and 1 are the
    preprocessed inputs; the output concatenates the states in ``concat``. ``run_preprocess(m,
    x)`` runs a preprocessing module (default ``m(x)``; a supernet may run a leaner equivalent).
    """

    def __init__(
        self,
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        make_edge: Callable[[int, int, int], nn.Module],
        edge_ids: Sequence[int],
        concat: Sequence[int] = (2, 3, 4, 5),
        affine: bool = True,
        run_preprocess: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        #: the cell kind its op weights are read from
        self.kind = "reduce" if reduction else "normal"
        self.run_preprocess = run_preprocess or nn.Module.__call__
        self.preprocess0 = (
            FactorizedReduce(c_pp, c, affine=affine)
            if reduction_prev
            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=affine)
        )
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=affine)
        self.edge_ids = tuple(edge_ids)
        self.edges = nn.ModuleList(
            make_edge(c, 2 if reduction and DARTS_EDGES[e][1] < 2 else 1, e) for e in self.edge_ids
        )
        self.concat = tuple(concat)

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, *edge_args: Sequence[object]
    ) -> torch.Tensor:
        inputs = [
            self.run_preprocess(self.preprocess0, s0),
            self.run_preprocess(self.preprocess1, s1),
        ]
        states = self.run_nodes(inputs, per_edge(edge_args))
        return cat_channels([states[s] for s in self.concat])

    def run_nodes(
        self, inputs: list[torch.Tensor], rows: Sequence[Sequence[object]]
    ) -> list[torch.Tensor]:
        """The cell's states: ``inputs`` (2) and each node, the sum of its in-edges' outputs
        in the order of their source states; ``rows``: per-edge arguments, indexed by edge id.
        The override point of a supernet that runs the edges otherwise."""
        states = list(inputs)
        nodes: list[torch.Tensor | None] = [None] * STEPS
        k = 0
        for i in range(STEPS):
            while k < len(self.edge_ids) and DARTS_EDGES[self.edge_ids[k]][0] == i:
                e = self.edge_ids[k]
                out = self.edges[k](states[DARTS_EDGES[e][1]], *(a[e] for a in rows))
                nodes[i] = out if nodes[i] is None else nodes[i] + out
                k += 1
            if nodes[i] is None:
                raise ArchError(f"node {i} of a DARTS cell has no input edge")
            states.append(nodes[i])
        return states


class DartsNetwork(nn.Module):
    """The DARTS CIFAR skeleton: 3x3 stem to ``stem_multiplier * c`` channels, ``layers`` cells
    with reduction cells (channels doubled) at 1/3 and 2/3 depth, global pool, linear head.

    ``make_cell_edges(kind)`` returns ``(make_edge, edge_ids, concat)`` for cell kind
    ``'normal'``/``'reduce'``; ``run_preprocess`` is passed to every cell, a ``cell_class``
    (default :class:`DartsCell`). ``forward(x, *kind_args)``: each of ``kind_args`` maps a cell
    kind to per-edge arguments (e.g. op weights ``{kind: [14, ops]}``).
    """

    def __init__(
        self,
        make_cell_edges: Callable[
            [str], tuple[Callable[[int, int, int], nn.Module], Sequence[int], Sequence[int]]
        ],
        num_classes: int,
        in_channels: int = 3,
        c: int = 16,
        layers: int = 8,
        stem_multiplier: int = 3,
        affine: bool = True,
        run_preprocess: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
        cell_class: type[DartsCell] = DartsCell,
    ) -> None:
        super().__init__()
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for layer in range(layers):
            reduction = layer in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            make_edge, edge_ids, concat = make_cell_edges("reduce" if reduction else "normal")
            cell = cell_class(
                c_pp,
                c_p,
                c_curr,
                reduction,
                reduction_prev,
                make_edge,
                edge_ids,
                concat,
                affine,
                run_preprocess,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, len(concat) * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor, *kind_args: OpWeights) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, *(a[cell.kind] for a in kind_args))
        return self.classifier(self.pool(s1).flatten(1))


@register_space("darts")
class DartsSpace(SearchSpace):
    """DARTS CNN space. ``c``/``layers`` size the standalone network (paper's evaluation net: 36, 20)."""

    op_names = DARTS_OPS
    cell_edges: ClassVar[dict[str, int]] = {kind: len(DARTS_EDGES) for kind in CELL_KINDS}
    cell_inputs = 2
    edge_nodes: ClassVar[dict[str, tuple[int, ...]]] = {
        kind: tuple(i for i, _ in DARTS_EDGES) for kind in CELL_KINDS
    }

    def __init__(self, c: int = 36, layers: int = 20) -> None:
        self.c = c
        self.layers = layers

    # -- codecs -------------------------------------------------------------------------
    def make(self, normal: Sequence[Gene], reduce: Sequence[Gene]) -> Genotype:
        """A canonical :class:`Genotype` from the genes of both cells (validated)."""
        concat = tuple(range(2, 2 + STEPS))
        return Genotype(
            _canonical_genes(normal, "normal"), concat, _canonical_genes(reduce, "reduce"), concat
        )

    def to_str(self, arch: Genotype) -> str:
        arch = self.make(arch.normal, arch.reduce)
        return (
            f"Genotype(normal={list(arch.normal)}, normal_concat={list(arch.normal_concat)}, "
            f"reduce={list(arch.reduce)}, reduce_concat={list(arch.reduce_concat)})"
        )

    def from_str(self, text: str) -> Genotype:
        try:
            call = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as err:
            raise ArchError(f"not a Genotype(...) string: {text!r} ({err.msg})") from None
        except UnicodeEncodeError:  # a lone surrogate: no source text at all
            raise ArchError(f"not a Genotype(...) string: {text!r} (not encodable)") from None
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Genotype"):
            raise ArchError(f"expected 'Genotype(normal=..., reduce=...)', got {text!r}")
        fields = dict(zip(Genotype._fields, (_literal(a) for a in call.args), strict=False))
        fields.update({kw.arg: _literal(kw.value) for kw in call.keywords if kw.arg})
        missing = set(Genotype._fields) - set(fields)
        if missing:
            raise ArchError(f"genotype string lacks {sorted(missing)}: {text!r}")
        for kind in CELL_KINDS:
            if list(fields[f"{kind}_concat"]) != list(range(2, 2 + STEPS)):
                raise ArchError(
                    f"{kind}_concat must be [2, 3, 4, 5], got {fields[f'{kind}_concat']}"
                )
        return self.make(fields["normal"], fields["reduce"])

    # -- sampling and neighbourhoods ----------------------------------------------------
    def sample(self, rng: random.Random) -> Genotype:
        cells = []
        for _ in CELL_KINDS:
            genes: list[Gene] = []
            for i in range(STEPS):
                for j in sorted(rng.sample(range(i + 2), 2)):
                    genes.append((rng.choice(DARTS_OPS[1:]), j))
            cells.append(genes)
        return self.make(*cells)

    def neighbours(self, arch: Genotype) -> list[Genotype]:
        """Every genotype that differs in exactly one gene (its op, its input or both)."""
        out: list[Genotype] = []
        for kind in CELL_KINDS:
            genes = list(getattr(arch, kind))
            for g, (op, j) in enumerate(genes):
                i, other = g // 2, genes[g ^ 1][1]
                for j2 in range(i + 2):
                    if j2 == other:
                        continue
                    for op2 in DARTS_OPS[1:]:
                        if (op2, j2) == (op, j):
                            continue
                        new = [*genes[:g], (op2, j2), *genes[g + 1 :]]
                        cells = {k: getattr(arch, k) for k in CELL_KINDS} | {kind: new}
                        out.append(self.make(cells["normal"], cells["reduce"]))
        return out

    def distance(self, a: Genotype, b: Genotype) -> int:
        d = 0
        for kind in CELL_KINDS:
            ga, gb = getattr(a, kind), getattr(b, kind)
            for i in range(STEPS):
                d += len(set(ga[2 * i : 2 * i + 2]) - set(gb[2 * i : 2 * i + 2]))
        return d

    # -- encodings ----------------------------------------------------------------------
    def one_hot(self, arch: Genotype) -> dict[str, torch.Tensor]:
        out = {}
        for kind in CELL_KINDS:
            w = torch.zeros(len(DARTS_EDGES), len(DARTS_OPS))
            w[:, 0] = 1.0  # absent edges hold 'none'
            for g, (op, j) in enumerate(getattr(arch, kind)):
                e = EDGE_INDEX[(g // 2, j)]
                w[e, 0] = 0.0
                w[e, self.op_index(op)] = 1.0
            out[kind] = w
        return out

    def cell_graphs(
        self, arch: Genotype
    ) -> dict[str, tuple[list[str], list[tuple[str, str, str]]]]:
        names = ["c_{k-2}", "c_{k-1}", *map(str, range(STEPS)), "c_{k}"]
        out = {}
        for kind in CELL_KINDS:
            edges = [
                (names[j], names[g // 2 + 2], op) for g, (op, j) in enumerate(getattr(arch, kind))
            ]
            edges += [(names[s], names[-1], "") for s in getattr(arch, f"{kind}_concat")]
            out[kind] = (names, edges)
        return out

    def derive(self, weights: OpWeights) -> Genotype:
        """Per node, the two inputs whose best non-``none`` weight is largest, each with that op."""
        self.check_weights(weights)
        cells = []
        for kind in CELL_KINDS:
            w = weights[kind].detach().float()[:, 1:]  # drop 'none'
            best_w, best_op = w.max(dim=1)
            genes: list[Gene] = []
            for i in range(STEPS):
                ids = [EDGE_INDEX[(i, j)] for j in range(i + 2)]
                # stable: ties go to the lower input index
                top = sorted(range(i + 2), key=lambda j: (-best_w[ids[j]].item(), j))[:2]
                genes += [(DARTS_OPS[1 + int(best_op[ids[j]])], j) for j in top]
            cells.append(genes)
        return self.make(*cells)

    # -- networks -----------------------------------------------------------------------
    def build_subnet(self, arch: Genotype, num_classes: int, in_channels: int = 3) -> DartsNetwork:
        arch = self.make(arch.normal, arch.reduce)

        def cell_edges(kind: str):
            genes = {EDGE_INDEX[(g // 2, j)]: op for g, (op, j) in enumerate(getattr(arch, kind))}
            ids = sorted(genes)
            return (
                (lambda c, stride, e: make_op(genes[e], c, stride)),
                ids,
                getattr(arch, f"{kind}_concat"),
            )

        return DartsNetwork(
            cell_edges, num_classes, in_channels=in_channels, c=self.c, layers=self.layers
        )
