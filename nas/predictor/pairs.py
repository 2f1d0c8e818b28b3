"""Training pairs for the delta predictor: every pair of archived archs, the close ones weighing most."""

from __future__ import annotations

import torch

from nas.predictor.encoding import changed_rows


def weighted_pairs(
    enc: torch.Tensor, decay: float, max_pairs: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordered index pairs ``[P, 2]`` of distinct rows of ``enc [n, D]`` and their training
    weights ``[P]``.

    A pair ``d`` edits apart weighs ``decay ** (d - 1)`` (1 for neighbours). When there are
    more than ``max_pairs`` pairs, ``max_pairs`` are drawn by weight without replacement
    (their weights are then 1: the draw already favours the close ones), else all are kept
    (in row-major order) with their weights, which the predictor's minibatches are drawn by.
    So a locally dense archive trains mostly on its close pairs and a sparse random one still
    trains on every distance (arXiv 2411.14498 trains on close pairs only, which leaves a
    random sample of a space like DARTS with almost none).
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    dist = changed_rows(enc, enc)
    weight = torch.where(dist > 0, decay ** (dist.double() - 1), 0.0).flatten()
    n_pairs = int((weight > 0).sum())
    if n_pairs <= max_pairs:
        flat = weight.nonzero().squeeze(1)
        kept = weight[flat].float()
    else:
        flat = torch.multinomial(weight, max_pairs, replacement=False, generator=generator)
        kept = torch.ones(max_pairs)
    return torch.stack([flat // len(enc), flat % len(enc)], dim=1), kept
