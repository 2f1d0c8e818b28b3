"""GDAS ("Searching for A Robust Neural Architecture in Four GPU Hours", arXiv 1910.04465).

Each step samples one op per edge by the straight-through Gumbel-softmax: the forward value is
the one-hot ``h`` of ``argmax(p)``, ``p = softmax((log_softmax(alpha) + g) / tau)`` with Gumbel
noise ``g``, and the gradient is that of ``p`` (``h - p.detach() + p``). Only the sampled ops
run; the other ops' weights (exactly zero in value) keep their gradient through the supernet's
mixed op, as in the reference code. The temperature falls linearly from ``search.tau_max``
(first epoch) to ``search.tau_min`` (last). The weight step trains a fresh sample (one path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nas.search.strategies import DartsStrategy, SeededDraws, register_strategy, wide
from nas.spaces import OpWeights, SearchSpace


class GdasStrategy(SeededDraws, DartsStrategy):
    graph_safe = False  # its op weights are one-hot draws from a host generator

    def __init__(
        self,
        space: SearchSpace,
        alpha_init_std: float = 1e-3,
        beta_weight: float = 0.0,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
    ) -> None:
        super().__init__(space, alpha_init_std, beta_weight)
        self.tau_max, self.tau_min = tau_max, tau_min
        self._init_draws()

    @property
    def tau(self) -> float:
        """The Gumbel-softmax temperature of the current epoch."""
        return self.tau_max - (self.tau_max - self.tau_min) * self.progress

    def gumbel(self, shape: torch.Size) -> torch.Tensor:
        """Standard Gumbel noise of ``shape`` from the strategy's generator (CPU, fp32)."""
        e = torch.empty(shape).exponential_(generator=self.generator)
        return -e.clamp_min(torch.finfo(torch.float32).tiny).log()

    def op_weights(self) -> dict[str, torch.Tensor]:
        """A fresh straight-through one-hot sample ``{kind: [edges, ops]}``."""
        out = {}
        with self._fp32():
            for kind, a in self.alphas.items():
                logits = (F.log_softmax(wide(a), -1) + self.gumbel(a.shape).to(a)) / self.tau
                p = F.softmax(logits, dim=-1)
                hard = F.one_hot(p.argmax(-1), p.shape[-1]).to(p.dtype)
                out[kind] = hard - p.detach() + p
        return out

    def derivation_weights(self) -> dict[str, torch.Tensor]:
        return {k: p.detach() for k, p in self.probabilities().items()}

    def eval_weights(self) -> OpWeights:
        """The one-hot of the derived architecture."""
        weights = self.space.one_hot(self.derived())
        device = next(iter(self.alphas.values())).device
        return {k: w.to(device) for k, w in weights.items()}


register_strategy(
    "gdas",
    lambda space, cfg, _: GdasStrategy(
        space, cfg["alpha_init_std"], cfg.get("beta_weight", 0.0), cfg["tau_max"], cfg["tau_min"]
    ),
)
