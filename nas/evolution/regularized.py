"""Regularized (aging) evolution, "Regularized Evolution for Image Classifier Architecture
Search" (arXiv 1802.01548), with the settings of its NAS-Bench-201 baseline (arXiv 2001.00326):
population 10, tournament (sample) size 3.

A population of the last ``population_size`` archs of ``init`` (an earlier stage's, replayed
from the archive without a query), filled up with random archs; each cycle draws ``sample_size`` members, mutates the best of
them (a NaN score counts as ``-inf``), adds the child and drops the oldest member. A child the
search has already scored keeps its score without a query (it still joins the population), so
no arch is evaluated twice.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

from nas.evaluate.base import Evaluator
from nas.evolution.archive import Archive, Entry
from nas.evolution.tracker import Feasible, Tracker
from nas.spaces import Arch


def regularized_evolution(
    evaluator: Evaluator,
    budget: int,
    rng: random.Random,
    archive: Archive | None = None,
    feasible: Feasible | None = None,
    population_size: int = 10,
    sample_size: int = 3,
    max_free_cycles: int = 10_000,
    init: Sequence[Arch] = (),
) -> Tracker:
    """Run until ``budget`` archs are scored, or ``max_free_cycles`` cycles in a row produced
    only already-scored (or infeasible) children; returns the search's :class:`Tracker`."""
    if not 1 <= sample_size <= population_size:
        raise ValueError(
            f"need 1 <= sample_size <= population_size, got {sample_size}, {population_size}"
        )
    run = Tracker(evaluator, budget, archive, feasible)
    population: deque[Entry] = deque(run.score_init(init)[-population_size:])
    while len(population) < population_size and run.remaining > 0:
        population.extend(run.score([run.sample_unseen(rng)], stage="regularized"))
    free = 0
    while run.remaining > 0 and free < max_free_cycles:
        parent = max(rng.sample(list(population), sample_size), key=lambda e: e.rank)
        child = run.space.mutate(parent.arch, rng)
        if not run.feasible(child):
            free += 1
            continue
        if child in run.seen:
            free += 1
            population.append(run.seen[child])
        else:
            free = 0
            population.extend(run.score([child], stage="regularized"))
        population.popleft()
    return run
