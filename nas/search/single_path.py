"""Single-path strategies: one architecture per training step, no architecture parameters.

``spos`` trains the supernet the way "Single Path One-Shot Neural Architecture Search with
Uniform Sampling" (arXiv 1904.00420) does: each weight step runs one path (one-hot op weights,
so only those ops run). Samplers (``search.sampler``):

* ``uniform``: an arch drawn uniformly from the space each step;
* ``fair``: "FairNAS: Rethinking Evaluation Fairness of Weight Sharing Neural Architecture
  Search" (arXiv 1907.01845): every ``len(ops)`` steps, each edge runs each of its ops once
  (independent random permutations per edge). Only for spaces whose every one-hot matrix is
  an arch (``space.independent_edges``, e.g. NB201).

The draws come from the strategy's own generator, which the checkpoint holds
(``get_extra_state``), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import random

import torch

from nas.errors import ConfigError
from nas.search.strategies import Strategy
from nas.spaces import OpWeights, SearchSpace

SAMPLERS = ("uniform", "fair")


class SinglePathStrategy(Strategy):
    """One sampled path per step (see the module docstring); ``seed`` seeds the draws."""

    def __init__(self, space: SearchSpace, sampler: str = "uniform", seed: int = 0) -> None:
        super().__init__(space)
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown search.sampler {sampler!r}; known: {list(SAMPLERS)}")
        if sampler == "fair" and not space.independent_edges:
            raise ConfigError(
                f"search.sampler=fair needs a space whose edges choose ops independently; "
                f"space {space.name!r} does not (use search.sampler=uniform)"
            )
        self.sampler = sampler
        self.rng = random.Random(seed)
        self._queue: list[dict[str, list[int]]] = []  # fair: the op index per edge, per step

    def arch_parameters(self) -> list[torch.nn.Parameter]:
        return []

    def probabilities(self) -> dict[str, torch.Tensor]:
        n = len(self.space.op_names)
        return {k: torch.full((e, n), 1.0 / n) for k, e in self.space.cell_edges.items()}

    def _fair_rows(self) -> dict[str, list[int]]:
        if not self._queue:
            n = len(self.space.op_names)
            perms = {
                k: [self.rng.sample(range(n), n) for _ in range(e)]
                for k, e in self.space.cell_edges.items()
            }
            self._queue = [
                {k: [p[step] for p in rows] for k, rows in perms.items()} for step in range(n)
            ]
        return self._queue.pop(0)

    def sample(self) -> OpWeights:
        """The next path's one-hot op weights ``{kind: [edges, ops]}``."""
        if self.sampler == "uniform":
            return self.space.one_hot(self.space.sample(self.rng))
        n = len(self.space.op_names)
        return {k: torch.eye(n)[torch.tensor(rows)] for k, rows in self._fair_rows().items()}

    def train_weights(self) -> OpWeights:
        return self.sample()

    def eval_weights(self) -> OpWeights:
        return self.sample()

    def get_extra_state(self) -> dict[str, object]:
        version, state, gauss = self.rng.getstate()
        return {"rng": [version, list(state), gauss], "queue": self._queue}

    def set_extra_state(self, state: dict[str, object]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self._queue = [dict(step) for step in state["queue"]]
