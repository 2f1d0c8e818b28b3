"""The difference-of-architecture predictor of "Delta-NAS: Difference of Architecture Encoding
for Predictor-based Evolutionary Neural Architecture Search" (arXiv 2411.14498).

A model ``f(a, b) = g(e_b - e_a, e_b + e_a) - g(e_a - e_b, e_b + e_a)`` (``e`` the encodings,
``g`` a small MLP) maps a pair to ``score(b) - score(a)``. It is antisymmetric by
construction (``f(b, a) == -f(a, b)`` exactly) and, beyond the paper's difference of
encodings, sees the pair's context ``e_a + e_b``: the same edit can help one cell and hurt
another (an op on an edge that a ``none`` elsewhere disconnects changes nothing). It trains on
every pair of archived archs, pairs ``d`` edits apart weighted ``decay ** (d - 1)``
(:func:`~nas.predictor.pairs.weighted_pairs`). A candidate ``c`` is scored from its ``k``
nearest archived archs ``a``: the mean of ``score(a) + f(a, c)``.

On NAS-Bench-201 (``scripts/bench_predictor.py``) training on close pairs only and the
difference alone ranked random cells well below the absolute predictor; every pair and the
context bring it level or ahead (README, "Predictor benchmark").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nas.predictor.base import Prediction, Predictor, _summary, score_scale
from nas.predictor.encoding import Features, changed_rows
from nas.predictor.models import TrainConfig
from nas.predictor.pairs import weighted_pairs
from nas.spaces import Arch, SearchSpace


class DeltaPredictor(Predictor):
    """Delta predictor. ``decay``: the training weight of a pair falls by this factor per
    edit beyond the first; ``max_pairs``: pairs drawn (by weight) per fit; ``k_nearest``:
    archived archs a candidate's prediction averages over."""

    pair_input = True

    def __init__(
        self,
        space: SearchSpace,
        cfg: TrainConfig | None = None,
        decay: float = 0.5,
        max_pairs: int = 20000,
        k_nearest: int = 5,
        features: Features | None = None,
        feature_names: Sequence[str] = (),
    ) -> None:
        super().__init__(space, cfg, features, feature_names)
        if k_nearest < 1:
            raise ValueError(f"k_nearest must be >= 1, got {k_nearest}")
        self.decay = decay
        self.max_pairs = max_pairs
        self.k_nearest = k_nearest
        self._enc = torch.zeros(0, self.encoder.size)
        self._y = torch.zeros(0)
        self._scale = 1.0

    def fit(self, archs: Sequence[Arch], scores: Sequence[float]) -> None:
        y = self._check(archs, scores)
        enc = self.encoder(archs)
        d = self.encoder.onehot_size  # pairs are formed by edits: the one-hot part
        pairs, weight = weighted_pairs(enc[:, :d], self.decay, self.max_pairs, self.ensemble.gen)
        if len(pairs) == 0:
            raise ValueError(f"the delta predictor needs two distinct archs, got {len(archs)}")
        self._enc, self._y, self._scale = enc, y, score_scale(y)
        i, j = pairs[:, 0], pairs[:, 1]
        self.ensemble.fit(pair_features(enc[i], enc[j]), (y[j] - y[i]) / self._scale, weight)

    def predict(self, archs: Sequence[Arch]) -> Prediction:
        enc = self.encoder(archs)
        k, d = min(self.k_nearest, len(self._enc)), self.encoder.onehot_size
        edits = changed_rows(enc[:, :d], self._enc[:, :d])
        nearest = torch.sort(edits, dim=1, stable=True).indices[:, :k]
        refs = self._enc[nearest]  # [m, k, D]
        f = self.ensemble(pair_features(refs, enc[:, None, :].expand_as(refs)).flatten(0, 1))
        return _summary((self._y[nearest] + self._scale * f.unflatten(1, nearest.shape)).mean(-1))

    def predict_difference(self, refs: Sequence[Arch], archs: Sequence[Arch]) -> Prediction:
        x = pair_features(self.encoder(refs), self.encoder(archs))
        return _summary(self._scale * self.ensemble(x))


def pair_features(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., 2D]``: the difference ``b - a`` (the model is odd in it) and the context ``b + a``."""
    return torch.cat([b - a, b + a], dim=-1)
