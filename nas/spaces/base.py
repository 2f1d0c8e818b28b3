"""The search-space protocol shared by every space, and the space registry.

A space is a set of cell architectures over a fixed list of candidate ops. Every
architecture-level quantity crosses part boundaries in one of two forms:

* an ``Arch``: an immutable, hashable value that round-trips through
  :meth:`SearchSpace.to_str` / :meth:`SearchSpace.from_str`;
* op weights: a mapping ``{cell_kind: Tensor[edges, ops]}`` in the op order of
  :attr:`SearchSpace.op_names` (alphas, sampled one-hots and derived one-hots alike).
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence

import torch
from torch import nn

Arch = Hashable
OpWeights = Mapping[str, torch.Tensor]


class ArchError(ValueError):
    """An architecture (or its string) that does not belong to the space."""


class SearchSpace(abc.ABC):
    """Protocol of a cell search space. Subclasses are stateless apart from their settings."""

    #: registry name (``space.name`` in the config)
    name: str
    #: candidate ops, in the order of the ``ops`` axis of op weights
    op_names: tuple[str, ...]
    #: ``{cell_kind: number_of_edges}``; op weights of kind k have shape ``[edges, len(op_names)]``
    cell_edges: Mapping[str, int]
    #: whether every one-hot ``[edges, ops]`` matrix is an arch (edges choose ops independently)
    independent_edges: bool = False
    #: ``{cell_kind: (node fed by edge e, ...)}`` (edge normalisation groups edges by node)
    edge_nodes: Mapping[str, tuple[int, ...]]
    #: how many of the first nodes of :meth:`cell_graphs` are the cell's inputs
    cell_inputs: int = 1

    # -- codecs -------------------------------------------------------------------------
    @abc.abstractmethod
    def to_str(self, arch: Arch) -> str:
        """The canonical string of ``arch``."""

    @abc.abstractmethod
    def from_str(self, text: str) -> Arch:
        """Parse a string; raises :class:`ArchError` naming what is wrong."""

    def to_json(self, arch: Arch) -> dict[str, str]:
        return {"space": self.name, "arch": self.to_str(arch)}

    def from_json(self, obj: Mapping[str, str]) -> Arch:
        if obj.get("space") != self.name:
            raise ArchError(
                f"architecture of space {obj.get('space')!r} given to space {self.name!r}"
            )
        return self.from_str(obj["arch"])

    # -- sampling and neighbourhoods ----------------------------------------------------
    @abc.abstractmethod
    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random architecture drawn with ``rng``."""

    @abc.abstractmethod
    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every architecture at edit distance exactly 1, in a deterministic order."""

    @abc.abstractmethod
    def distance(self, a: Arch, b: Arch) -> int:
        """Edit distance: the fewest single edits that turn ``a`` into ``b``."""

    def canonical(self, arch: Arch) -> Arch:
        """The representative of the archs that compute the same function as ``arch`` (a
        space that knows no such equivalences returns ``arch``)."""
        return arch

    def distinct_archs(self) -> Sequence[Arch] | None:
        """One representative (:meth:`canonical`) per function the space computes, or
        ``None`` where the space cannot list them."""
        return None

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """A uniformly random neighbour of ``arch``."""
        return rng.choice(self.neighbours(arch))

    # -- encodings ----------------------------------------------------------------------
    @abc.abstractmethod
    def one_hot(self, arch: Arch) -> dict[str, torch.Tensor]:
        """Op weights of ``arch``: one-hot rows, ``{kind: [edges, ops]}`` (absent edges: ``none``)."""

    def encode(self, arch: Arch) -> torch.Tensor:
        """Fixed-length float encoding: the flattened one-hots of every cell kind, in kind order."""
        return torch.cat([w.flatten() for w in self.one_hot(arch).values()])

    @property
    def encoding_size(self) -> int:
        return sum(e * len(self.op_names) for e in self.cell_edges.values())

    def op_mask(self) -> dict[str, torch.Tensor]:
        """``{kind: bool [edges, ops]}``: the ops some arch of the space chooses on each edge
        (every op on every edge unless the space says otherwise)."""
        return {
            k: torch.ones(e, len(self.op_names), dtype=torch.bool)
            for k, e in self.cell_edges.items()
        }

    @abc.abstractmethod
    def derive(self, weights: OpWeights) -> Arch:
        """The discrete architecture that op weights (e.g. softmax(alphas)) point at."""

    def check_weights(self, weights: OpWeights) -> None:
        """Raise naming the kind and shape when ``weights`` does not fit this space."""
        if set(weights) != set(self.cell_edges):
            raise ValueError(
                f"op weights of space {self.name!r} need cell kinds {sorted(self.cell_edges)}, "
                f"got {sorted(weights)}"
            )
        for kind, edges in self.cell_edges.items():
            shape = tuple(weights[kind].shape)
            if shape != (edges, len(self.op_names)):
                raise ValueError(
                    f"op weights[{kind!r}] must have shape ({edges}, {len(self.op_names)}), got {shape}"
                )

    @abc.abstractmethod
    def cell_graphs(self, arch: Arch) -> dict[str, tuple[list[str], list[tuple[str, str, str]]]]:
        """Each cell of ``arch`` as a graph for drawing: ``{kind: (nodes, [(src, dst, op)])}``,
        nodes in topological order; edges that pass nothing (``none``) are left out."""

    # -- networks -----------------------------------------------------------------------
    @abc.abstractmethod
    def build_subnet(self, arch: Arch, num_classes: int, in_channels: int = 3) -> nn.Module:
        """A standalone network of ``arch`` with fresh weights: ``[B, in, H, W] -> [B, classes]``."""

    def op_index(self, name: str) -> int:
        try:
            return self.op_names.index(name)
        except ValueError:
            raise ArchError(
                f"op {name!r} is not in space {self.name!r}; its ops are {list(self.op_names)}"
            ) from None


def per_edge(edge_args: Sequence[object]) -> list[Sequence[object]]:
    """A cell's per-edge arguments, each indexable by edge: a tensor's rows come out of one
    ``unbind`` (views; their gradients go back in one ``stack``, where indexing the tensor per
    edge makes a zero-filled copy of it for each edge in backward)."""
    return [a.unbind(0) if isinstance(a, torch.Tensor) else a for a in edge_args]


def searchable_cells(net: nn.Module) -> Iterator[tuple[int, nn.Module, str, tuple[int, ...]]]:
    """``(index in net.cells, cell, cell kind, edge ids)`` of every cell of a space's network
    that has searchable edges (fixed blocks between cells, NB201's residual blocks, are
    skipped). A searchable cell names its ``kind`` (a key of ``space.cell_edges``);
    ``cell.edges[k]`` is the module of edge ``edge_ids[k]``."""
    for i, cell in enumerate(net.cells):
        if not hasattr(cell, "edges"):
            continue
        yield i, cell, cell.kind, tuple(getattr(cell, "edge_ids", range(len(cell.edges))))


_SPACES: dict[str, Callable[..., SearchSpace]] = {}


def register_space(name: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Class decorator: make a space constructible by ``get_space(name)``."""

    def wrap(cls: type[SearchSpace]) -> type[SearchSpace]:
        cls.name = name
        _SPACES[name] = cls
        return cls

    return wrap


def get_space(name: str, **kwargs: object) -> SearchSpace:
    """Construct the registered space ``name``; an unknown name lists the valid ones."""
    try:
        cls = _SPACES[name]
    except KeyError:
        raise KeyError(
            f"unknown search space {name!r} (space.name); known: {sorted(_SPACES)}"
        ) from None
    return cls(**kwargs)


def available_spaces() -> Sequence[str]:
    return sorted(_SPACES)
