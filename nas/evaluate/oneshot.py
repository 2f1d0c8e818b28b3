"""The ``oneshot`` evaluator: subnet accuracy (or loss) with weights inherited from a trained
supernet, BatchNorm statistics recalibrated per subnet first."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from nas.evaluate.base import Cost, Score
from nas.spaces import Arch
from nas.supernet import Supernet

Batch = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]

#: what ``oneshot.metric`` may name
METRICS = ("accuracy", "loss")


def _tracking_bns(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@contextmanager
def batchnorm_kept(net: nn.Module) -> Iterator[None]:
    """Inside, forward passes may move ``net``'s BatchNorm running statistics and change its
    train/eval mode; afterwards both are as they were."""
    bns = _tracking_bns(net)
    saved = [{k: v.clone() for k, v in bn.state_dict().items()} for bn in bns]
    was_training = net.training
    try:
        yield
    finally:
        for bn, state in zip(bns, saved, strict=True):
            bn.load_state_dict(state)
        net.train(was_training)


@torch.no_grad()
def recalibrate_bn(
    net: nn.Module, forward: Callable[[torch.Tensor], object], inputs: Iterable[torch.Tensor]
) -> None:
    """Re-estimate the running statistics of every BatchNorm of ``net`` that tracks them.

    The statistics are reset, ``forward(x)`` runs on each of ``inputs`` in train mode with
    cumulative averaging (``momentum=None``, so every batch counts equally), then each
    BatchNorm gets its momentum back and ``net`` is left in eval mode.
    """
    bns = _tracking_bns(net)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    try:
        for x in inputs:
            forward(x)
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        net.eval()


def _inputs(batch: Batch) -> torch.Tensor:
    return batch if isinstance(batch, torch.Tensor) else batch[0]


class OneShotEvaluator:
    """One-shot scores of subnets of a trained ``supernet``, source ``oneshot``: top-1
    accuracy (%), or with ``metric="loss"`` the negative mean cross-entropy (higher is better;
    "Evaluating Efficient Performance Estimators of Neural Architectures", arXiv 2008.03064,
    finds the one-shot loss ranks better than the accuracy).

    For each arch the supernet runs the arch's single path (its one-hot op weights):
    BatchNorm statistics are recalibrated on ``calib_batches`` (inputs, or ``(inputs, labels)``
    batches as a loader yields them), then ``val_batches`` (``(inputs, labels)``) are
    classified in eval mode. The batches are moved to the supernet's device once and reused
    for every arch of an :meth:`evaluate` call; the supernet's own BatchNorm statistics and
    train/eval mode are restored afterwards. With ``canonical`` an arch is scored by the path
    of its class's representative (:meth:`SearchSpace.canonical`). Cost: wall seconds per arch.
    """

    source = "oneshot"

    def __init__(
        self,
        supernet: Supernet,
        calib_batches: Sequence[Batch],
        val_batches: Sequence[Batch],
        metric: str = "accuracy",
        canonical: bool = False,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown one-shot metric {metric!r}; known: {list(METRICS)}")
        self.metric = metric
        self.canonical = canonical
        if not calib_batches or not val_batches:
            raise ValueError(
                "OneShotEvaluator needs at least one calibration and one validation batch"
            )
        self.supernet = supernet
        self.space = supernet.space
        self.device = next(supernet.parameters()).device
        self.calib = [_inputs(b).to(self.device) for b in calib_batches]
        self.val = []
        for b in val_batches:
            if isinstance(b, torch.Tensor):
                raise ValueError("validation batches must be (inputs, labels) pairs")
            self.val.append((b[0].to(self.device), b[1].to(self.device)))

    @torch.no_grad()
    def _score(self, arch: Arch) -> float:
        if self.canonical:
            arch = self.space.canonical(arch)
        weights = {k: w.to(self.device) for k, w in self.space.one_hot(arch).items()}
        recalibrate_bn(self.supernet, lambda x: self.supernet(x, weights), self.calib)
        total, summed = 0, 0.0  # correct predictions, or the cross-entropy, summed
        for x, y in self.val:
            logits = self.supernet(x, weights)
            if self.metric == "accuracy":
                summed += int((logits.argmax(dim=1) == y).sum())
            else:
                summed += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            total += len(y)
        return 100.0 * summed / total if self.metric == "accuracy" else -summed / total

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        scores = []
        with batchnorm_kept(self.supernet):
            for arch in archs:
                start = time.perf_counter()
                value = self._score(arch)
                scores.append(Score(value, self.source, Cost(time.perf_counter() - start)))
        return scores
