"""FairDARTS ("Fair DARTS: Eliminating Unfair Advantages in Differentiable Architecture
Search", arXiv 1911.12126): independent ``sigmoid(alpha)`` op weights instead of a softmax,
so ops stop competing for one unit of mass, and the zero-one loss
``-mean((sigmoid(alpha) - 0.5)^2)`` (weight ``search.zero_one_weight``) that pushes every
weight towards 0 or 1, so that the derived (thresholded) cell is what the supernet ran."""

from __future__ import annotations

import torch

from nas.search.strategies import DartsStrategy, register_strategy, wide
from nas.spaces import SearchSpace


class FairDartsStrategy(DartsStrategy):
    def __init__(
        self,
        space: SearchSpace,
        alpha_init_std: float = 1e-3,
        beta_weight: float = 0.0,
        zero_one_weight: float = 10.0,
    ) -> None:
        super().__init__(space, alpha_init_std, beta_weight)
        self.zero_one_weight = zero_one_weight

    def op_weights(self) -> dict[str, torch.Tensor]:
        with self._fp32():
            return {k: torch.sigmoid(wide(a)) for k, a in self.alphas.items()}

    def probabilities(self) -> dict[str, torch.Tensor]:
        return {k: w / w.sum(-1, keepdim=True) for k, w in self.op_weights().items()}

    def regularizer(self) -> torch.Tensor | None:
        w = torch.cat([s.flatten() for s in self.op_weights().values()])
        zero_one = -self.zero_one_weight * (w - 0.5).pow(2).mean()
        beta = super().regularizer()
        return zero_one if beta is None else zero_one + beta


register_strategy(
    "fairdarts",
    lambda space, cfg, _: FairDartsStrategy(
        space, cfg["alpha_init_std"], cfg.get("beta_weight", 0.0), cfg["zero_one_weight"]
    ),
)
