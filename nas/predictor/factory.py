"""Build a predictor by name, and its file ``predictor.pt``.

``predictor.pt`` (loadable with ``weights_only=True``): ``{"kind", "options", "train",
"features": [str], "archs": [str], "scores": [float], "model": state_dict}``: the predictor's
settings, the names of its per-arch features, the data of its last fit and its trained
weights, so :func:`load_predictor` (given the same feature function) predicts what it
predicted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nas.errors import NasError
from nas.io import atomic_writer
from nas.predictor.absolute import AbsolutePredictor
from nas.predictor.base import Predictor
from nas.predictor.delta import DeltaPredictor
from nas.predictor.encoding import Features
from nas.predictor.models import TrainConfig
from nas.spaces import Arch, SearchSpace

PREDICTORS: dict[str, type[Predictor]] = {"delta": DeltaPredictor, "absolute": AbsolutePredictor}


def build_predictor(
    kind: str,
    space: SearchSpace,
    train: Mapping[str, Any],
    features: Features | None = None,
    feature_names: Sequence[str] = (),
    **options: Any,
) -> Predictor:
    """The predictor ``kind`` (``delta`` or ``absolute``), reading ``features`` (named
    ``feature_names``) beside each encoding when given; ``options``: the delta predictor's
    ``decay``, ``max_pairs``, ``k_nearest`` (ignored by ``absolute``)."""
    try:
        cls = PREDICTORS[kind]
    except KeyError:
        raise ValueError(
            f"unknown predictor {kind!r} (predictor.kind); known: {sorted(PREDICTORS)}"
        ) from None
    extra = options if cls is DeltaPredictor else {}
    return cls(space, TrainConfig(**train), features=features, feature_names=feature_names, **extra)


def save_predictor(
    path: str | os.PathLike[str],
    predictor: Predictor,
    archs: Sequence[Arch],
    scores: Sequence[float],
    options: Mapping[str, Any],
) -> None:
    """Write ``predictor`` (last fitted on ``archs``/``scores``) to ``path`` atomically."""
    path = Path(path)
    kind = next(k for k, cls in PREDICTORS.items() if type(predictor) is cls)
    record = {
        "kind": kind,
        "options": dict(options),
        "train": asdict(predictor.cfg),
        "features": list(predictor.encoder.names),
        "archs": [predictor.space.to_str(a) for a in archs],
        "scores": [float(s) for s in scores],
        "model": predictor.ensemble.model.state_dict(),
    }
    with atomic_writer(path, "wb") as f:
        torch.save(record, f)


def load_predictor(
    path: str | os.PathLike[str], space: SearchSpace, features: Features | None = None
) -> Predictor:
    """The predictor saved by :func:`save_predictor`, ready to predict; one fitted with
    per-arch features needs ``features``, the same function (its names are in the file)."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        kind, train = record["kind"], record["train"]
    except Exception as err:  # a truncated or foreign file
        raise NasError(f"{path} is not a readable predictor file: {err}") from None
    names = record.get("features", [])
    if bool(names) != (features is not None):
        raise NasError(
            f"{path} was fitted with features {names}: pass "
            + ("their function (features=...)" if names else "no features")
        )
    # a fit of zero steps restores the fit's data without training; the weights come next
    restore = {**train, "steps": 0}
    predictor = build_predictor(kind, space, restore, features, names, **record["options"])
    predictor.fit([space.from_str(s) for s in record["archs"]], record["scores"])
    predictor.ensemble.model.load_state_dict(record["model"])
    predictor.cfg = predictor.ensemble.cfg = TrainConfig(**record["train"])
    return predictor
