"""Scorers: what ``sample`` and ``evolve`` query when the score combines several signals
(``scorer=proxy`` or ``scorer=hybrid``; ``scorer=oneshot`` is the one-shot evaluator alone).

A scorer measures *components* of each arch and combines them into one score:

* ``oneshot``: the one-shot evaluator's accuracy (weights inherited from the supernet);
* ``proxy:<name>``: a zero-cost proxy of the standalone network at initialisation
  (:class:`~nas.evaluate.ProxyEvaluator`);
* ``params``, ``flops``: of the standalone network (a :class:`~nas.export.CostModel`).

Each component is put on a common scale against a *reference*: its mean and standard
deviation over a fixed sample of random archs (drawn from the run's seed, measured once), after
a logarithm for the positive, multiplicative ones (synflow, parameters, FLOPs). The score is
the weighted mean of the standardised components. This aggregates the signals' ranks, as
"AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search" (arXiv 2403.19232)
does, but an arch's score does not move as the archive grows. A non-finite component (a
degenerate network) makes the score ``-inf``. Every component is archived beside the score,
so any other weighting can re-score an archive without measuring again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from nas.evaluate.base import Cost, Score
from nas.spaces import Arch, SearchSpace


def scorer_source(name: str, components: Sequence[str]) -> str:
    """The archive source of a scorer's scores: ``oneshot`` for the one-shot evaluator alone,
    ``scorer:<name>`` for a combination."""
    return "oneshot" if list(components) == ["oneshot"] else f"scorer:{name}"


#: components measured on a log scale: positive and multiplicative across layers
LOG_SCALE = ("proxy:synflow", "params", "flops")


@dataclass(frozen=True)
class Component:
    """One signal of a scorer: ``measure(archs)`` gives one float per arch (higher is
    better; a non-finite value marks a degenerate network)."""

    name: str
    measure: Callable[[Sequence[Arch]], list[float]]

    def values(self, archs: Sequence[Arch]) -> list[float]:
        """The measured values on the scale the scorer standardises (log for ``LOG_SCALE``)."""
        raw = self.measure(archs)
        if self.name not in LOG_SCALE:
            return [float(v) for v in raw]
        return [math.log(v) if v > 0 else -math.inf for v in raw]


#: a component's location and scale over the reference archs
Stats = dict[str, tuple[float, float]]


def reference_stats(values: Mapping[str, Sequence[float]]) -> Stats:
    """Each component's mean and standard deviation over the finite values of the reference
    archs (``values[component]``: one per arch); a component with fewer than two distinct
    finite values cannot be standardised and raises."""
    stats: Stats = {}
    for name, column in values.items():
        finite = [v for v in column if math.isfinite(v)]
        mean = sum(finite) / max(len(finite), 1)
        std = math.sqrt(sum((v - mean) ** 2 for v in finite) / max(len(finite) - 1, 1))
        if len(finite) < 2 or std == 0:
            raise ValueError(
                f"scorer component {name!r} takes fewer than two distinct finite values on "
                "the reference archs; raise scorer.reference or drop the component"
            )
        stats[name] = (mean, std)
    return stats


def combine(components: Mapping[str, float], stats: Stats, weights: Mapping[str, float]) -> float:
    """The weighted mean of ``components`` standardised by ``stats`` (``-inf`` when one is
    not finite); ``weights`` default to 1."""
    total = norm = 0.0
    for name, (mean, std) in stats.items():
        value = components[name]
        if not math.isfinite(value):
            return -math.inf
        w = float(weights.get(name, 1.0))
        total += w * (value - mean) / std
        norm += abs(w)
    return total / norm


class ScorerEvaluator:
    """Scores archs of ``space`` by combining ``components`` (see the module docstring);
    ``stats`` come from :func:`reference_stats` on the reference archs. Source
    ``scorer:<name>``; each :class:`Score` carries its components (on the standardised
    scale's input: log values for ``LOG_SCALE``). Cost: wall seconds of all components."""

    def __init__(
        self,
        space: SearchSpace,
        name: str,
        components: Sequence[Component],
        stats: Stats,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        missing = {c.name for c in components} ^ set(stats)
        if missing:
            raise ValueError(f"reference statistics and components differ on {sorted(missing)}")
        unknown = set(weights or {}) - set(stats)
        if unknown:
            raise ValueError(
                f"scorer.weights names {sorted(unknown)}, not components of this scorer "
                f"({sorted(stats)})"
            )
        self.space = space
        self.name = name
        self.components = list(components)
        self.stats = stats
        self.weights = dict(weights or {})

    @property
    def source(self) -> str:
        return f"scorer:{self.name}"

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        if not archs:
            return []
        start = time.perf_counter()
        columns = {c.name: c.values(archs) for c in self.components}
        seconds = (time.perf_counter() - start) / len(archs)
        scores = []
        for i in range(len(archs)):
            parts = {name: column[i] for name, column in columns.items()}
            value = combine(parts, self.stats, self.weights)
            scores.append(Score(value, self.source, Cost(seconds), components=parts))
        return scores
