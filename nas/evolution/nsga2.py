"""NSGA-II over a search space: the multi-objective baseline ("A Fast and Elitist
Multiobjective Genetic Algorithm: NSGA-II", IEEE Transactions on Evolutionary Computation,
2002), with mutation as the only variation, as regularized evolution searches cell spaces.

The objectives are the evaluator's score (maximised, the one that costs a query) and
``costs(arch)``: values computed without a query (latency from a lookup table, parameters,
FLOPs), each minimised. Each generation draws ``population_size`` children, each the mutation of
the better of two random members (by NSGA-II's order: front, then crowding distance), scores the
new feasible ones and keeps the ``population_size`` best of parents and children by the same
order. A child already scored joins the pool without a query; as in regularized evolution,
``max_free_cycles`` draws in a row without a new arch end the search.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

from nas.evaluate.base import Evaluator
from nas.evolution.archive import Archive, Entry
from nas.evolution.pareto import nsga2_order
from nas.evolution.tracker import Feasible, Tracker
from nas.spaces import Arch

Costs = Callable[[Arch], Sequence[float]]


def objective_points(scores: Sequence[float], archs: Sequence[Arch], costs: Costs) -> np.ndarray:
    """``[N, 1 + len(costs)]`` objectives to minimise: the negated scores, then each arch's
    costs."""
    return np.array(
        [[-s, *costs(a)] for s, a in zip(scores, archs, strict=True)], dtype=float
    ).reshape(len(archs), -1)


def objectives(entries: Sequence[Entry], costs: Costs) -> np.ndarray:
    """:func:`objective_points` of scored entries (a NaN score: ``+inf``)."""
    return objective_points([e.rank for e in entries], [e.arch for e in entries], costs)


def nsga2(
    evaluator: Evaluator,
    costs: Costs,
    budget: int,
    rng: random.Random,
    archive: Archive | None = None,
    feasible: Feasible | None = None,
    population_size: int = 20,
    max_free_cycles: int = 10_000,
    init: Sequence[Arch] = (),
) -> Tracker:
    """Run until ``budget`` archs are scored (or no new arch turns up); returns the search's
    :class:`Tracker` (its history holds every scored arch; the front is
    ``non_dominated_fronts(objectives(history, costs))[0]``)."""
    if population_size < 2:
        raise ValueError(f"population_size must be >= 2, got {population_size}")
    run = Tracker(evaluator, budget, archive, feasible)
    population = run.score_init(init)[-population_size:]
    while len(population) < population_size and run.remaining > 0:
        population += run.score([run.sample_unseen(rng)], stage="nsga2")
    free = 0
    while run.remaining > 0 and free < max_free_cycles:
        order = nsga2_order(objectives(population, costs))
        position = np.empty(len(order), dtype=int)
        position[order] = np.arange(len(order))
        children: dict[Arch, Entry] = {}
        while len(children) < population_size and run.remaining > 0 and free < max_free_cycles:
            a, b = rng.sample(range(len(population)), 2)
            parent = population[a if position[a] < position[b] else b]
            child = run.space.mutate(parent.arch, rng)
            if child in children or not run.feasible(child):
                free += 1
            elif child in run.seen:
                free += 1
                children[child] = run.seen[child]
            else:
                free = 0
                children[child] = run.score([child], stage="nsga2")[0]
        pool = list({e.arch: e for e in [*population, *children.values()]}.values())
        keep = nsga2_order(objectives(pool, costs))[:population_size]
        population = [pool[i] for i in keep]
    return run
