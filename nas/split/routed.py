"""One-shot scores from a split supernet: each arch is scored by the sub-supernet whose
restriction it meets (the leaves of a split partition the space, so exactly one does)."""

from __future__ import annotations

from collections.abc import Sequence

from nas.evaluate.base import Evaluator, Score
from nas.spaces import Arch, SearchSpace
from nas.split.restriction import Restriction, op_rows


def route(restrictions: Sequence[Restriction], arch: Arch) -> int:
    """The index of the one restriction that allows ``arch``; ``ValueError`` when not one does
    (restrictions that do not partition the space)."""
    rows = op_rows(restrictions[0].space, arch)
    hits = [i for i, r in enumerate(restrictions) if r.admits(rows)]
    if len(hits) != 1:
        raise ValueError(
            f"{restrictions[0].space.to_str(arch)} is allowed by {len(hits)} sub-supernets, "
            f"not one: the restrictions do not partition the space"
        )
    return hits[0]


class RoutedEvaluator:
    """Routes every arch to the evaluator of the one restriction that allows it."""

    def __init__(self, space: SearchSpace, routes: Sequence[tuple[Restriction, Evaluator]]) -> None:
        if not routes:
            raise ValueError("a routed evaluator needs at least one route")
        sources = {ev.source for _, ev in routes}
        if len(sources) != 1:
            raise ValueError(f"routes must score with one source, got {sorted(sources)}")
        self.space = space
        self.routes = list(routes)
        (self.source,) = sources

    def route(self, arch: Arch) -> int:
        """The index of the route whose restriction allows ``arch``."""
        return route([r for r, _ in self.routes], arch)

    def evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        by_route: dict[int, list[int]] = {}
        for i, arch in enumerate(archs):
            by_route.setdefault(self.route(arch), []).append(i)
        scores: list[Score | None] = [None] * len(archs)
        for r, idx in by_route.items():
            for i, score in zip(
                idx, self.routes[r][1].evaluate([archs[i] for i in idx]), strict=True
            ):
                scores[i] = score
        return scores  # type: ignore[return-value]
