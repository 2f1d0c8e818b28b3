"""Which ops a sub-supernet allows on each edge (NAS-LID, arXiv 2211.12759).

A supernet split along an edge becomes two sub-supernets, each allowing one group of that
edge's ops; the splits of a tree narrow one edge each. Only for spaces whose edges choose
their ops independently (``space.independent_edges``, e.g. NB201): there a restriction is a
product set of archs, which single-path training samples uniformly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from nas.errors import ConfigError
from nas.spaces import Arch, OpWeights, SearchSpace

#: ``{kind: [[op index, ...] per edge]}``: the allowed ops, sorted, per edge of each cell kind
Allowed = Mapping[str, Sequence[Sequence[int]]]


@dataclass(frozen=True)
class Restriction:
    """The archs of ``space`` whose every edge uses one of its ``allowed`` ops."""

    space: SearchSpace
    allowed: dict[str, tuple[tuple[int, ...], ...]]

    @classmethod
    def full(cls, space: SearchSpace) -> Restriction:
        """No restriction: every op on every edge."""
        if not space.independent_edges:
            raise ConfigError(
                f"splitting a supernet needs a space whose edges choose ops independently; "
                f"space {space.name!r} does not (use space=nb201)"
            )
        ops = tuple(range(len(space.op_names)))
        return cls(space, {k: (ops,) * e for k, e in space.cell_edges.items()})

    @classmethod
    def from_json(cls, space: SearchSpace, allowed: Allowed) -> Restriction:
        return cls(space, {k: tuple(tuple(sorted(e)) for e in v) for k, v in allowed.items()})

    def to_json(self) -> dict[str, list[list[int]]]:
        return {k: [list(e) for e in v] for k, v in self.allowed.items()}

    def narrowed(self, kind: str, edge: int, ops: Sequence[int]) -> Restriction:
        """This restriction with ``edge`` of ``kind`` allowing only ``ops`` (a subset)."""
        if not set(ops) <= set(self.allowed[kind][edge]) or not ops:
            raise ValueError(f"ops {list(ops)} are not a subset of {self.allowed[kind][edge]}")
        edges = list(self.allowed[kind])
        edges[edge] = tuple(sorted(ops))
        return Restriction(self.space, {**self.allowed, kind: tuple(edges)})

    def allows(self, arch: Arch) -> bool:
        return self.admits(op_rows(self.space, arch))

    def admits(self, rows: Mapping[str, Sequence[int]]) -> bool:
        """Whether an arch with the op indices ``rows`` (:func:`op_rows`) is allowed."""
        return all(
            op in allowed
            for kind, ops in rows.items()
            for op, allowed in zip(ops, self.allowed[kind], strict=True)
        )

    def sample(self, rng: random.Random) -> OpWeights:
        """One-hot op weights of a uniformly random allowed arch."""
        n = len(self.space.op_names)
        eye = torch.eye(n)
        return {
            k: eye[torch.tensor([rng.choice(e) for e in edges])]
            for k, edges in self.allowed.items()
        }

    def with_op(self, rng: random.Random, kind: str, edge: int, op: int) -> OpWeights:
        """Like :meth:`sample`, with ``op`` on ``edge`` of ``kind``."""
        weights = self.sample(rng)
        weights[kind][edge] = torch.nn.functional.one_hot(
            torch.tensor(op), len(self.space.op_names)
        ).float()
        return weights

    def splittable(self) -> list[tuple[str, int]]:
        """The edges that still allow two ops or more: ``(kind, edge)``."""
        return [(k, e) for k, v in self.allowed.items() for e, ops in enumerate(v) if len(ops) > 1]


def op_rows(space: SearchSpace, arch: Arch) -> dict[str, list[int]]:
    """``{kind: [op index per edge]}`` of ``arch``."""
    return {k: w.argmax(dim=1).tolist() for k, w in space.one_hot(arch).items()}
