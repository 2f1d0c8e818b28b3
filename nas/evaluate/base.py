"""The ``Evaluator`` protocol: architectures in, scores out (higher is better)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from nas.spaces import Arch, SearchSpace


def seeded_subnet(
    space: SearchSpace, arch: Arch, num_classes: int, in_channels: int, seed: int
) -> nn.Module:
    """``arch``'s standalone network (on the CPU) initialised from ``seed`` alone: drawn from
    the CPU generator whatever the default device, so every device starts from the same
    weights; the global random state is restored afterwards."""
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.default_generator.manual_seed(seed)
        return space.build_subnet(arch, num_classes, in_channels)


@dataclass(frozen=True)
class Cost:
    """What a score cost: wall seconds and benchmark/table queries."""

    seconds: float = 0.0
    queries: int = 0


@dataclass(frozen=True)
class Score:
    """One evaluation. ``source`` is ``oneshot``, ``proxy:<name>``, ``scorer:<name>``,
    ``tabular`` or ``trained``; ``components``: the signals a combined score was made of
    (:mod:`nas.evaluate.scorer`), by name."""

    value: float
    source: str
    cost: Cost = field(default_factory=Cost)
    components: Mapping[str, float] | None = field(default=None, hash=False)

    def to_json(self) -> dict[str, Any]:
        record = {"score": self.value, "source": self.source, "cost": asdict(self.cost)}
        if self.components is not None:
            record["components"] = dict(self.components)
        return record


@runtime_checkable
class Evaluator(Protocol):
    """Scores architectures of ``space``; batch calls are the norm. ``source`` is what its
    :class:`Score` objects carry (an archive keeps one score per arch and source)."""

    space: SearchSpace
    source: str

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]: ...
