"""The bookkeeping every search shares: its budget, its history and the no-repeat rule.

A search scores archs through :meth:`Tracker.score`. An arch the search has already scored
is never scored again; an arch the archive already holds with a score of the evaluator's
``source`` (a resumed run, or archs handed in from an earlier stage) is taken from it without
a query, while a score of another source (a proxy's, in a one-shot search) does not count and
the arch is evaluated anew. So a search resumed from its own archive replays its earlier
steps for free and then continues exactly as an uninterrupted run with the same seed would
(for a deterministic evaluator).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from nas.evaluate.base import Evaluator, Score
from nas.evolution.archive import Archive, Entry
from nas.spaces import Arch

Feasible = Callable[[Arch], bool]


class Tracker:
    """One search's view of the archive. ``budget``: how many distinct archs the search may
    score (archived ones included); ``feasible``: constraint filter (None: all pass)."""

    def __init__(
        self,
        evaluator: Evaluator,
        budget: int,
        archive: Archive | None = None,
        feasible: Feasible | None = None,
    ) -> None:
        if budget < 1:
            raise ValueError(f"the query budget must be >= 1, got {budget}")
        self.evaluator = evaluator
        self.space = evaluator.space
        self.budget = budget
        self.archive = archive if archive is not None else Archive(self.space)
        if self.archive.space.name != self.space.name:
            raise ValueError(
                f"archive of space {self.archive.space.name!r} given to a search over "
                f"{self.space.name!r}"
            )
        self.feasible = feasible or (lambda arch: True)
        #: what this search scored, in order
        self.history: list[Entry] = []
        self.seen: dict[Arch, Entry] = {}

    @property
    def remaining(self) -> int:
        return self.budget - len(self.history)

    def score(self, archs: Sequence[Arch], stage: str) -> list[Entry]:
        """Entries of ``archs`` (distinct, new to this search, at most :attr:`remaining`):
        archived ones are reused, the others evaluated in one batch and archived."""
        if len(set(archs)) != len(archs) or any(a in self.seen for a in archs):
            raise ValueError("a search may score each arch once")
        if len(archs) > self.remaining:
            raise ValueError(f"{len(archs)} archs exceed the remaining budget {self.remaining}")
        source = self.evaluator.source
        new = [a for a in archs if not self.archive.has(a, source)]
        fresh = dict(zip(new, self._evaluate(new), strict=True)) if new else {}
        out = []
        for arch in archs:
            entry = self.archive.get(arch, source) or self.archive.add(arch, fresh[arch], stage)
            self.history.append(entry)
            self.seen[arch] = entry
            out.append(entry)
        return out

    def score_init(self, init: Sequence[Arch], stage: str = "init") -> list[Entry]:
        """Entries of the distinct archs of ``init`` (as many as the budget allows), in order:
        an earlier stage's archs, taken from the archive without a query when it holds them."""
        return self.score(list(dict.fromkeys(init))[: self.remaining], stage)

    def _evaluate(self, archs: Sequence[Arch]) -> list[Score]:
        """The evaluator's scores of ``archs``, checked to carry its ``source``."""
        scores = self.evaluator.evaluate(archs)
        wrong = {s.source for s in scores} - {self.evaluator.source}
        if wrong:
            raise ValueError(
                f"evaluator of source {self.evaluator.source!r} returned scores of {sorted(wrong)}"
            )
        return scores

    def sample_unseen(self, rng: random.Random, max_tries: int = 100_000) -> Arch:
        """A uniformly random feasible arch this search has not scored."""
        for _ in range(max_tries):
            arch = self.space.sample(rng)
            if arch not in self.seen and self.feasible(arch):
                return arch
        raise RuntimeError(
            f"no unseen feasible arch in {max_tries} random draws; loosen the constraints "
            "or lower the budget"
        )

    def best(self, k: int = 1) -> list[Entry]:
        """The ``k`` best entries of this search, best first (earlier first among ties; NaN
        ranks as ``-inf``)."""
        return sorted(self.history, key=lambda e: -e.rank)[:k]
