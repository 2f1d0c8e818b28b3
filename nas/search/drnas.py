"""DrNAS ("DrNAS: Dirichlet Neural Architecture Search", arXiv 2006.10355).

Each edge's op weights are a draw from a Dirichlet distribution with concentration
``elu(alpha) + 1``, reparameterised so the architecture gradient flows through the draw; the
architecture loss adds ``search.kl_weight`` times the KL divergence from the uniform
Dirichlet prior (concentration 1), which keeps the concentrations from growing without bound.
The weight step trains a fresh draw; validation and derivation use the Dirichlet mean.
Partial channels (``space.supernet.partial_channels``) combine with it as with any strategy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from nas.search.strategies import DartsStrategy, SeededDraws, register_strategy, wide
from nas.spaces import SearchSpace


class DrnasStrategy(SeededDraws, DartsStrategy):
    graph_safe = False  # its op weights are drawn from a host generator each step

    def __init__(
        self,
        space: SearchSpace,
        alpha_init_std: float = 1e-3,
        beta_weight: float = 0.0,
        kl_weight: float = 1e-3,
    ) -> None:
        super().__init__(space, alpha_init_std, beta_weight)
        self.kl_weight = kl_weight
        self._init_draws()

    def concentrations(self) -> dict[str, torch.Tensor]:
        with self._fp32():
            return {k: F.elu(wide(a)) + 1.0 for k, a in self.alphas.items()}

    def probabilities(self) -> dict[str, torch.Tensor]:
        return {k: c / c.sum(-1, keepdim=True) for k, c in self.concentrations().items()}

    def op_weights(self) -> dict[str, torch.Tensor]:
        """A reparameterised Dirichlet draw per edge, from the strategy's generator."""
        out = {}
        for kind, c in self.concentrations().items():
            # the draw reads the CPU generator: it is reseeded from the strategy's own and
            # restored afterwards (torch.manual_seed would reseed every CUDA generator too)
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(
                    int(torch.randint(2**62, (), generator=self.generator))
                )
                out[kind] = Dirichlet(c.cpu()).rsample().to(c.device)
        return out

    def derivation_weights(self) -> dict[str, torch.Tensor]:
        return {k: p.detach() for k, p in self.probabilities().items()}

    def eval_weights(self) -> dict[str, torch.Tensor]:
        return self.derivation_weights()

    def regularizer(self) -> torch.Tensor:
        kl = sum(
            kl_divergence(Dirichlet(c), Dirichlet(torch.ones_like(c))).sum()
            for c in self.concentrations().values()
        )
        beta = super().regularizer()
        reg = self.kl_weight * kl
        return reg if beta is None else reg + beta


register_strategy(
    "drnas",
    lambda space, cfg, _: DrnasStrategy(
        space, cfg["alpha_init_std"], cfg.get("beta_weight", 0.0), cfg["kl_weight"]
    ),
)
