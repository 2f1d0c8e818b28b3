"""The sample stage's choice of subnets: an arch, its neighbours, then random archs."""

from __future__ import annotations

import random

from nas.evaluate.base import Evaluator
from nas.evolution.archive import Entry, ranked
from nas.evolution.tracker import Tracker
from nas.spaces import Arch


def sample_around(
    run: Tracker,
    center: Arch | None,
    neighbours: int,
    rng: random.Random,
    prescreen: Evaluator | None = None,
    prescreen_pool: int = 1,
    stage: str = "sample",
) -> list[Entry]:
    """Score archs one by one (each archived as it is scored) until ``run``'s budget is spent:
    ``center`` (when feasible), up to ``neighbours`` of its feasible neighbours in random order,
    then random feasible archs. With ``prescreen``, each random arch is the one the cheap
    evaluator rates best among ``prescreen_pool`` draws (those scores are not archived).
    Deterministic for a given ``rng`` state, so a rerun replays from the archive for free."""
    picks: list[Arch] = []
    if center is not None and run.feasible(center):
        picks.append(center)
        near = [a for a in run.space.neighbours(center) if run.feasible(a)]
        picks += rng.sample(near, min(neighbours, len(near)))
    out = [run.score([a], stage)[0] for a in picks[: run.remaining]]
    while run.remaining > 0:
        pool: list[Arch] = []
        while len(pool) < (prescreen_pool if prescreen is not None else 1):
            arch = run.sample_unseen(rng)
            if arch not in pool:
                pool.append(arch)
        if prescreen is not None:
            values = [s.value for s in prescreen.evaluate(pool)]
            pool = [pool[max(range(len(pool)), key=lambda i: ranked(values[i]))]]
        out += run.score(pool, stage)
    return out
