"""Single-path strategies: each weight step trains sampled paths, no architecture parameters.

``spos`` trains the supernet the way "Single Path One-Shot Neural Architecture Search with
Uniform Sampling" (arXiv 1904.00420) does: a path is one-hot op weights, so only its ops run.
Samplers (``search.sampler``):

* ``uniform``: one arch drawn uniformly from the space per step;
* ``fair``: "FairNAS: Rethinking Evaluation Fairness of Weight Sharing Neural Architecture
  Search" (arXiv 1907.01845), strict fairness: each step trains ``len(ops)`` paths in which
  every op of every edge appears exactly once (independent random permutations per edge),
  gradients summed into one update. Only for spaces whose every one-hot matrix is an arch
  (``space.independent_edges``, e.g. NB201);
* ``sandwich``: the sandwich rule of "Universally Slimmable Networks and Improved Training
  Techniques" (arXiv 1903.05134): the largest path, the smallest path (by parameter count)
  and ``search.sandwich_random`` uniform paths per step, gradients summed into one update;
  with ``search.distill``, in-place distillation ("BigNAS: Scaling Up Neural Architecture
  Search with Big Single-Stage Models", arXiv 2003.11142): the largest path learns from the
  labels, every other path from the largest path's predictions (soft targets, no gradient);
* ``distinct``: one arch per step drawn uniformly from the space's distinct functions
  (:meth:`SearchSpace.distinct_archs`, e.g. NB201's 5,425 classes), so that no function is
  trained more often for having more isomorphic spellings ("Evaluating Efficient
  Performance Estimators of Neural Architectures", arXiv 2008.03064). Score with
  ``oneshot.canonical=true`` so that every cell is rated by the path that was trained.

The draws come from the strategy's own generator, which the checkpoint holds
(``get_extra_state``), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import torch

from nas.errors import ConfigError
from nas.search.strategies import Strategy, register_strategy
from nas.spaces import Arch, OpWeights, SearchSpace, searchable_cells
from nas.split.restriction import Allowed, Restriction
from nas.supernet import Supernet

SAMPLERS = ("uniform", "fair", "sandwich", "distinct")


def op_parameter_counts(supernet: Supernet) -> dict[str, torch.Tensor]:
    """``{kind: [edges, ops]}``: each op's parameter count summed over the cells of a kind."""
    space = supernet.space
    counts = {k: torch.zeros(e, len(space.op_names)) for k, e in space.cell_edges.items()}
    for _, cell, kind, edge_ids in searchable_cells(supernet.net):
        for e, mixed in zip(edge_ids, cell.edges, strict=True):
            for k in range(len(space.op_names)):
                counts[kind][e, k] += sum(p.numel() for p in mixed.single_op(k).parameters())
    return counts


def extreme_paths(space: SearchSpace, counts: Mapping[str, torch.Tensor]) -> tuple[Arch, Arch]:
    """``(largest, smallest)``: the archs the space derives from per-op parameter counts and
    from their negatives (``none`` never chosen; ties go to the earlier op)."""
    none = space.op_names.index("none") if "none" in space.op_names else None
    scored = []
    for sign in (1.0, -1.0):
        scores = {}
        for kind, c in counts.items():
            s = sign * c.clone()
            if none is not None:
                s[:, none] = -float("inf")
            scores[kind] = s
        scored.append(space.derive(scores))
    return scored[0], scored[1]


class SinglePathStrategy(Strategy):
    """Sampled paths per step (see the module docstring); ``seed`` seeds the draws.

    ``supernet`` is needed by ``sandwich`` only (its paths' parameter counts).
    """

    def __init__(
        self,
        space: SearchSpace,
        sampler: str = "uniform",
        seed: int = 0,
        supernet: Supernet | None = None,
        sandwich_random: int = 2,
        allowed: Allowed | None = None,
        distill: bool = False,
    ) -> None:
        super().__init__(space)
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown search.sampler {sampler!r}; known: {list(SAMPLERS)}")
        if distill and sampler != "sandwich":
            raise ConfigError(
                f"search.distill=true distils from the sandwich's largest path: set "
                f"search.sampler=sandwich (got {sampler!r})"
            )
        #: the first training path is the teacher of the others (in-place distillation)
        self.distills = distill
        if allowed is not None and sampler != "uniform":
            raise ConfigError(
                f"a split supernet trains with search.sampler=uniform, not {sampler!r}"
            )
        #: a sub-supernet's restriction (NAS-LID splits): only its archs are drawn
        self.restriction = Restriction.from_json(space, allowed) if allowed is not None else None
        if sampler == "fair" and not space.independent_edges:
            raise ConfigError(
                f"search.sampler=fair needs a space whose edges choose ops independently; "
                f"space {space.name!r} does not (use search.sampler=uniform or sandwich)"
            )
        self.distinct = space.distinct_archs() if sampler == "distinct" else None
        if sampler == "distinct" and self.distinct is None:
            raise ConfigError(
                f"search.sampler=distinct needs a space that lists its distinct archs; space "
                f"{space.name!r} does not (use search.sampler=uniform)"
            )
        self.sampler = sampler
        self.rng = random.Random(seed)
        self.sandwich_random = sandwich_random
        self.extremes: tuple[Arch, Arch] | None = None
        if sampler == "sandwich":
            if supernet is None:
                raise ValueError(
                    "search.sampler=sandwich needs the supernet (its parameter counts)"
                )
            self.extremes = extreme_paths(space, op_parameter_counts(supernet))

    def arch_parameters(self) -> list[torch.nn.Parameter]:
        return []

    def probabilities(self) -> dict[str, torch.Tensor]:
        n = len(self.space.op_names)
        return {k: torch.full((e, n), 1.0 / n) for k, e in self.space.cell_edges.items()}

    def sample(self) -> OpWeights:
        """One uniformly random path's one-hot op weights ``{kind: [edges, ops]}`` (of the
        restriction's archs, when there is one; of the distinct archs with ``distinct``)."""
        if self.restriction is not None:
            return self.restriction.sample(self.rng)
        if self.distinct is not None:
            return self.space.one_hot(self.rng.choice(self.distinct))
        return self.space.one_hot(self.space.sample(self.rng))

    def fair_paths(self) -> list[OpWeights]:
        """``len(ops)`` paths in which every op of every edge appears exactly once."""
        n = len(self.space.op_names)
        perms = {
            k: [self.rng.sample(range(n), n) for _ in range(e)]
            for k, e in self.space.cell_edges.items()
        }
        eye = torch.eye(n)
        return [
            {k: eye[torch.tensor([p[step] for p in rows])] for k, rows in perms.items()}
            for step in range(n)
        ]

    def train_paths(self) -> list[OpWeights]:
        if self.sampler == "fair":
            return self.fair_paths()
        if self.sampler == "sandwich":
            assert self.extremes is not None
            fixed = [self.space.one_hot(a) for a in self.extremes]
            return fixed + [self.sample() for _ in range(self.sandwich_random)]
        return [self.sample()]

    def eval_weights(self) -> OpWeights:
        return self.sample()

    def get_extra_state(self) -> dict[str, object]:
        version, state, gauss = self.rng.getstate()
        return {"rng": [version, list(state), gauss]}

    def set_extra_state(self, state: dict[str, object]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def _factory(space: SearchSpace, cfg: Mapping[str, Any], supernet: Supernet | None) -> Strategy:
    return SinglePathStrategy(
        space,
        cfg.get("sampler", "uniform"),
        cfg.get("seed", 0),
        supernet,
        cfg.get("sandwich_random", 2),
        cfg.get("allowed"),
        cfg.get("distill", False),
    )


register_strategy("spos", _factory)
