"""Search strategies: they own the architecture parameters and choose each step's op weights.

A strategy is an ``nn.Module`` registered on the LightningModule (so checkpoints hold its
parameters and state) and kept apart from the supernet's weights by construction: the
weight optimiser is built from ``supernet.parameters()``, the architecture optimiser from
``strategy.arch_parameters()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import ConfigError
from nas.spaces import OpWeights, SearchSpace
from nas.supernet import Supernet


class Strategy(nn.Module):
    """Base strategy. Subclasses define the op weights of the weight step and the arch loss."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def arch_parameters(self) -> list[nn.Parameter]:
        """Parameters the architecture optimiser updates (empty: no architecture step)."""
        return list(self.parameters())

    def probabilities(self) -> dict[str, torch.Tensor]:
        """The strategy's current belief over ops, ``{kind: [edges, ops]}``; fp32, rows sum to 1."""
        raise NotImplementedError

    def train_weights(self) -> OpWeights:
        """Op weights for the weight step (no gradient reaches the architecture)."""
        raise NotImplementedError

    def eval_weights(self) -> OpWeights:
        """Op weights for validating the supernet."""
        return {k: p.detach() for k, p in self.probabilities().items()}

    def arch_loss(
        self, supernet: Supernet, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor | None:
        """Loss whose gradient updates :meth:`arch_parameters`; ``None`` when there is no arch step."""
        return None


class DartsStrategy(Strategy):
    """First-order DARTS ("DARTS: Differentiable Architecture Search", arXiv 1806.09055).

    One alpha matrix ``[edges, ops]`` per cell kind, initialised ``alpha_init_std * N(0, 1)``;
    op weights are ``softmax(alpha)`` over ops, computed in fp32 even under autocast. The
    architecture gradient is the gradient of the validation loss at the current weights
    (the first-order approximation).
    """

    def __init__(self, space: SearchSpace, alpha_init_std: float = 1e-3) -> None:
        super().__init__(space)
        n_ops = len(space.op_names)
        self.alphas = nn.ParameterDict(
            {
                k: nn.Parameter(alpha_init_std * torch.randn(e, n_ops))
                for k, e in space.cell_edges.items()
            }
        )

    def probabilities(self) -> dict[str, torch.Tensor]:
        with torch.autocast(
            device_type=next(iter(self.alphas.values())).device.type, enabled=False
        ):
            return {k: F.softmax(a.float(), dim=-1) for k, a in self.alphas.items()}

    def train_weights(self) -> OpWeights:
        return {k: p.detach() for k, p in self.probabilities().items()}

    def arch_loss(self, supernet: Supernet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(supernet(x, self.probabilities()), y)


_STRATEGIES: dict[str, Callable[..., Strategy]] = {}


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    _STRATEGIES[name] = factory


register_strategy("darts", lambda space, cfg: DartsStrategy(space, cfg["alpha_init_std"]))


def _single_path(space: SearchSpace, cfg: Mapping[str, Any]) -> Strategy:
    from nas.search.single_path import SinglePathStrategy

    return SinglePathStrategy(space, cfg.get("sampler", "uniform"), cfg.get("seed", 0))


register_strategy("spos", _single_path)


def available_strategies() -> list[str]:
    return sorted(_STRATEGIES)


def build_strategy(space: SearchSpace, cfg: Mapping[str, Any]) -> Strategy:
    """The strategy named ``cfg["strategy"]`` (``search.strategy``); unknown names list the valid ones."""
    try:
        factory = _STRATEGIES[cfg["strategy"]]
    except KeyError:
        raise ConfigError(
            f"unknown search strategy {cfg['strategy']!r} (search.strategy); "
            f"known: {available_strategies()}"
        ) from None
    return factory(space, cfg)
