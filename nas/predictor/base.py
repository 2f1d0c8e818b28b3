"""What every score predictor offers: fit on scored archs, predict scores and differences."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from nas.predictor.encoding import ArchEncoder, Features
from nas.predictor.models import Ensemble, TrainConfig
from nas.spaces import Arch, SearchSpace


class Prediction(NamedTuple):
    """Ensemble mean and standard deviation, each ``[n]``, in score units."""

    mean: torch.Tensor
    std: torch.Tensor


def _summary(per_member: torch.Tensor) -> Prediction:
    """``[members, n]`` -> mean and (population) std over the members."""
    return Prediction(per_member.mean(0), per_member.std(0, unbiased=False))


class Predictor(abc.ABC):
    """A predictor of ``space``'s scores (higher is better), an ensemble of small MLPs. With
    ``features`` (named ``feature_names``), each arch's encoding is followed by them (see
    :class:`~nas.predictor.encoding.ArchEncoder`)."""

    def __init__(
        self,
        space: SearchSpace,
        cfg: TrainConfig | None = None,
        features: Features | None = None,
        feature_names: Sequence[str] = (),
    ) -> None:
        self.space = space
        self.cfg = cfg or TrainConfig()
        self.encoder = ArchEncoder(space, features, feature_names)
        d = self.encoder.size
        self.ensemble = (
            Ensemble(2 * d, self.cfg, odd_features=d) if self.pair_input else Ensemble(d, self.cfg)
        )

    #: whether the model reads a pair of archs ``[e_b - e_a, e_b + e_a]`` and is odd in the
    #: difference (else one arch's encoding)
    pair_input: bool = False

    @abc.abstractmethod
    def fit(self, archs: Sequence[Arch], scores: Sequence[float]) -> None:
        """(Re)fit on scored archs; refits continue from the current weights."""

    @abc.abstractmethod
    def predict(self, archs: Sequence[Arch]) -> Prediction:
        """Predicted scores of ``archs``."""

    @abc.abstractmethod
    def predict_difference(self, refs: Sequence[Arch], archs: Sequence[Arch]) -> Prediction:
        """Predicted ``score(archs[i]) - score(refs[i])`` for every ``i``."""

    def _check(self, archs: Sequence[Arch], scores: Sequence[float]) -> torch.Tensor:
        if len(archs) != len(scores):
            raise ValueError(f"got {len(archs)} archs but {len(scores)} scores")
        bad = [s for s in scores if not math.isfinite(s)]
        if bad:
            raise ValueError(f"predictor scores must be finite, got {bad[:3]}")
        return torch.tensor(list(scores), dtype=torch.float32)


def score_scale(y: torch.Tensor) -> float:
    """The spread that normalises targets: the std of ``y``, or 1 when it is (near) zero."""
    s = float(y.std(unbiased=False)) if len(y) > 1 else 0.0
    return s if s > 1e-8 else 1.0
