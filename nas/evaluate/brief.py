"""Brief training: a standalone network trained for a few dozen SGD steps from a seeded
initialisation, then scored on held-out images (the shortlist stage's fidelity).

Zero-cost proxies rate what a network can express; they cannot tell how fast it learns. Among
the large cells the proxies agree on, the early learning speed separates the ones that train
well, e.g. NAS-Bench-201 cells with a skip from the cell's input to its output (the 12-epoch
accuracies of "NAS-Bench-201", arXiv 2001.00326, rank them first as the 200-epoch ones do).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

#: images per forward when scoring
EVAL_CHUNK = 128


@dataclass(frozen=True)
class BriefResult:
    """The briefly trained network on the held-out images: accuracy in %, mean loss, and the
    wall seconds the training and scoring took."""

    accuracy: float
    loss: float
    seconds: float


def brief_training(
    net: nn.Module,
    train: Sequence[tuple[torch.Tensor, torch.Tensor]],
    val: Sequence[tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float,
    weight_decay: float,
) -> BriefResult:
    """Train ``net`` (in place) for ``steps`` SGD steps on ``train``'s batches, cycled in order,
    then score it on ``val``.

    SGD with Nesterov momentum 0.9 and a one-cycle schedule peaking at ``lr`` after a quarter
    of the steps: a short run that reaches its fastest learning early and ends annealed.
    Batches ``(x [B, C, H, W], y [B])`` must be on ``net``'s device; nothing is drawn at
    random, so the result follows from ``net``'s initial weights and the batches alone.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    start = time.perf_counter()
    optimizer = torch.optim.SGD(
        net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.25)
    net.train()
    for x, y in itertools.islice(itertools.cycle(train), steps):
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    net.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for batch in val:
            # in chunks: one forward of 1,000 32x32 images takes 2.8x as long on 2 CPU cores
            for x, y in zip(*(t.split(EVAL_CHUNK) for t in batch), strict=True):
                logits = net(x)
                loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
                total += len(y)
    return BriefResult(100.0 * correct / total, loss_sum / total, time.perf_counter() - start)
