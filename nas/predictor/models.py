"""The small MLPs behind the predictors: an ensemble of MLPs evaluated as one batched module,
an antisymmetric wrapper, and the training loop."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TrainConfig:
    """Ensemble size, MLP shape and training of the predictors.

    Each member has its own init and minibatches (drawn with replacement); all are trained
    together with Adam on the Huber loss of standardised targets. A fresh fit takes ``steps``
    updates; a refit continues from the current weights for ``warm_steps``.
    """

    hidden: int = 64
    layers: int = 2
    ensemble: int = 3
    steps: int = 300
    warm_steps: int = 50
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


class EnsembleMLP(nn.Module):
    """``members`` independent MLPs with ``layers`` hidden ReLU layers of width ``hidden``.

    ``forward(x)``: ``x`` is ``[members, n, in_features]`` (one batch per member) or
    ``[n, in_features]`` (shared); returns ``[members, n]``. Weights are drawn like
    ``nn.Linear``'s (uniform in ``±1/sqrt(fan_in)``) from ``generator``.
    """

    def __init__(
        self, members: int, in_features: int, hidden: int, layers: int, generator: torch.Generator
    ) -> None:
        super().__init__()
        widths = [in_features] + [hidden] * layers + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(widths):
            bound = 1.0 / math.sqrt(fan_in)

            def draw(*shape: int, bound: float = bound) -> nn.Parameter:
                return nn.Parameter((torch.rand(*shape, generator=generator) * 2 - 1) * bound)

            self.weights.append(draw(members, fan_in, fan_out))
            self.biases.append(draw(members, 1, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(len(self.weights[0]), *x.shape)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if k < last:
                x = torch.relu(x)
        return x.squeeze(-1)


class Antisymmetric(nn.Module):
    """``f(d, c) = g(d, c) - g(-d, c)`` for inputs ``[..., odd + rest]`` split into ``d`` (the
    first ``odd`` features) and ``c``: odd in ``d``, so ``f(-d, c) == -f(d, c)`` holds exactly."""

    def __init__(self, g: nn.Module, odd: int) -> None:
        super().__init__()
        self.g = g
        self.odd = odd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flipped = torch.cat([-x[..., : self.odd], x[..., self.odd :]], dim=-1)
        return self.g(x) - self.g(flipped)


class Ensemble:
    """A trained :class:`EnsembleMLP`, wrapped in :class:`Antisymmetric` in the first
    ``odd_features`` inputs when that is positive.

    The first :meth:`fit` trains fresh members for ``cfg.steps``; later fits continue from the
    current weights for ``cfg.warm_steps`` (a refit on a grown archive). Calling the ensemble
    gives every member's output, ``[members, n]``. Deterministic for a fixed ``cfg.seed``.
    """

    def __init__(self, in_features: int, cfg: TrainConfig, odd_features: int = 0) -> None:
        self.cfg = cfg
        self.gen = torch.Generator().manual_seed(cfg.seed)
        g = EnsembleMLP(cfg.ensemble, in_features, cfg.hidden, cfg.layers, self.gen)
        self.model: nn.Module = Antisymmetric(g, odd_features) if odd_features else g
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        self.fitted = False

    def fit(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        """Train on inputs ``x [n, D]`` and targets ``y [n]``; minibatches are drawn with
        replacement, uniformly or in proportion to ``weight [n]`` when given."""
        if len(x) == 0:
            raise ValueError("cannot fit a predictor on zero training examples")
        steps = self.cfg.warm_steps if self.fitted else self.cfg.steps
        members, size = self.cfg.ensemble, min(self.cfg.batch_size, len(x))
        self.model.train()
        for _ in range(steps):
            if weight is None:
                idx = torch.randint(len(x), (members, size), generator=self.gen)
            else:
                idx = torch.multinomial(
                    weight.expand(members, -1), size, replacement=True, generator=self.gen
                )
            loss = nn.functional.huber_loss(self.model(x[idx]), y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        self.model.eval()
        self.fitted = True

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise RuntimeError("the predictor is not fitted yet; call fit(archs, scores) first")
        return self.model(x)
