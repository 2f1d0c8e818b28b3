"""The ``proxy`` evaluator: a zero-cost proxy on each architecture's standalone subnet at
initialisation."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from nas.evaluate.base import Cost, Score, seeded_subnet
from nas.evaluate.proxies import compute_proxy, get_proxy
from nas.spaces import Arch, SearchSpace


class ProxyEvaluator:
    """Scores archs of ``space`` with the registered proxy ``proxy`` (source ``proxy:<name>``).

    Each arch's standalone subnet (``space.build_subnet``) is initialised from the same torch
    seed ``seed`` on the CPU, then moved to the device of ``inputs``, so scores are
    deterministic and comparable across archs and devices. ``inputs``
    ``[B, C, H, W]`` (and ``targets`` ``[B]`` for proxies that need labels) is the one fixed
    batch every arch sees; ``batch_size`` and ``options`` go to
    :func:`~nas.evaluate.proxies.compute_proxy`. A vector proxy (``lid``) is scored by its
    mean. A non-finite value (a degenerate network, e.g. ``none`` on every edge) becomes
    ``-inf``, the worst score. Cost: wall seconds per arch, including building the subnet.
    """

    def __init__(
        self,
        space: SearchSpace,
        proxy: str,
        inputs: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        num_classes: int = 10,
        seed: int = 0,
        batch_size: int | None = None,
        **options: object,
    ) -> None:
        self.spec = get_proxy(proxy)
        if self.spec.labels and targets is None:
            raise ValueError(f"proxy {proxy!r} needs targets (class labels); got None")
        self.space = space
        self.inputs = inputs
        self.targets = targets
        self.num_classes = num_classes
        self.seed = seed
        self.batch_size = batch_size
        self.options = options

    @property
    def source(self) -> str:
        return f"proxy:{self.spec.name}"

    def raw(self, arch: Arch) -> torch.Tensor:
        """The proxy's own output for ``arch``: a 0-d tensor, or ``[layers]`` for a vector proxy."""
        net = seeded_subnet(self.space, arch, self.num_classes, self.inputs.shape[1], self.seed)
        net = net.to(self.inputs.device)
        return compute_proxy(
            self.spec.name,
            net,
            self.inputs,
            self.targets,
            batch_size=self.batch_size,
            inplace=True,
            **self.options,
        ).detach()

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        scores = []
        for arch in archs:
            start = time.perf_counter()
            value = float(self.raw(arch).double().mean())
            if not math.isfinite(value):
                value = -math.inf
            scores.append(Score(value, self.source, Cost(time.perf_counter() - start)))
        return scores
