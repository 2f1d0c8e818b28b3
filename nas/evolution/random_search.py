"""Random search: uniformly random feasible archs until the budget is spent."""

from __future__ import annotations

import random
from collections.abc import Sequence

from nas.evaluate.base import Evaluator
from nas.evolution.archive import Archive
from nas.evolution.tracker import Feasible, Tracker
from nas.spaces import Arch


def random_search(
    evaluator: Evaluator,
    budget: int,
    rng: random.Random,
    archive: Archive | None = None,
    feasible: Feasible | None = None,
    init: Sequence[Arch] = (),
) -> Tracker:
    """Score ``budget`` distinct archs: ``init`` first (from the archive when it holds them,
    so an earlier stage's archs cost no new query), then random ones; returns the search's
    :class:`Tracker`."""
    run = Tracker(evaluator, budget, archive, feasible)
    run.score_init(init)
    while run.remaining > 0:
        run.score([run.sample_unseen(rng)], stage="random")
    return run
