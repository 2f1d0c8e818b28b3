"""β-DARTS ("β-DARTS: Beta-Decay Regularization for Differentiable Architecture Search",
arXiv 2203.01665): first-order DARTS whose architecture loss adds the β-decay term
(:func:`~nas.search.strategies.beta_decay`), weighted ``search.beta_weight`` (rising linearly
over the search). The term is available to every DARTS-family strategy through the same key
(``search.strategy=darts search.beta_weight=...`` is this strategy)."""

from __future__ import annotations

from nas.errors import ConfigError
from nas.search.strategies import DartsStrategy, register_strategy


def _factory(space, cfg, _supernet) -> DartsStrategy:
    if not cfg.get("beta_weight"):
        raise ConfigError("search.strategy=betadarts needs search.beta_weight > 0")
    return DartsStrategy(space, cfg["alpha_init_std"], cfg["beta_weight"])


register_strategy("betadarts", _factory)
