"""The ``Evaluator`` protocol: architectures in, scores out (higher is better)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from nas.spaces import Arch, SearchSpace


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
