"""Schedules as functions of the epoch and the current epoch count: no scheduler state is
checkpointed, so a training resumed with more epochs follows the longer schedule."""

from __future__ import annotations

import math


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of ``epochs``: cosine annealing from ``lr``
    to ``lr_min`` (``CosineAnnealingLR(T_max=epochs)``'s closed form; it stays at ``lr_min``
    after ``epochs``)."""
    done = min(epoch, epochs) / max(epochs, 1)
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * done)) / 2
