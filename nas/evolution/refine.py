"""The predictor-guided evolutionary refiner of "Delta-NAS: Difference of Architecture Encoding
for Predictor-based Evolutionary Neural Architecture Search" (arXiv 2411.14498).

Start from ``init_size`` random archs (or archs handed in, e.g. an earlier stage's samples).
Each generation: refit the predictor on everything scored so far; mutate the ``parents`` best
archs into all their neighbours (or ``mutations`` sampled ones each); drop seen and infeasible
ones; optionally keep only the best ``prescreen_keep`` share by a cheap evaluator (training-free
pre-screening, e.g. a zero-cost proxy); rank the rest by predicted score plus ``explore`` times
the ensemble's std; score the top ``q`` with the (expensive) evaluator. When every neighbour of
the parents has been seen, the next-best archs become parents.

Restarts (``restart`` > 0): a local search that has not improved its best for ``restart``
queries is stuck in a deep local optimum (on NAS-Bench-201, every neighbour of its top archs can
be worse, and crawling through them costs 100+ queries). It is then dropped: ``restart_size``
fresh random archs (pre-screened like the initial ones) start a new local search, whose parents
come only from the archs scored since; the predictor keeps learning from everything scored.

Noisy scores (``smooth`` > 0): parents are ranked by a blend of their observed and their
predicted score, so an arch whose one score was lucky (the predictor, fit on its neighbours
too, expects less) does not hold the local search while its neighbours all look worse.

Several objectives (``costs``: values computed without a query, e.g. latency from a lookup
table, each minimised): parents are taken in NSGA-II's order of (score, costs) (front, then
crowding distance; :mod:`nas.evolution.pareto`), and candidates are ranked by how much their
predicted score (plus ``explore`` times the std) with their known costs would add to the
front's hypervolume (one cost; with more, by NSGA-II's order of the predictions). A local
search counts as improving while its queries join its front.

Non-finite scores (``-inf``: the proxy and tabular evaluators' verdict on degenerate cells;
NaN counts as ``-inf``) stay in the archive but never make a parent nor a predictor target.
While fewer than two finite scores exist, the predictor sits out and candidates are scored in
the order they were found.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.evaluate.base import Evaluator
from nas.evolution.archive import Archive, Entry, finite, ranked
from nas.evolution.nsga2 import Costs, objective_points, objectives
from nas.evolution.pareto import hypervolume_2d, non_dominated_fronts, nsga2_order
from nas.evolution.tracker import Feasible, Tracker
from nas.predictor import Predictor
from nas.spaces import Arch, SearchSpace


@dataclass
class RefineConfig:
    """Knobs of :func:`refine` (see the module docstring)."""

    init_size: int = 15
    parents: int = 1
    mutations: int | None = None
    q: int = 2
    explore: float = 0.0
    prescreen_keep: float = 0.5
    prescreen_pool: int = 10
    restart: int = 30
    restart_size: int = 10
    smooth: float = 0.0

    def __post_init__(self) -> None:
        if self.restart < 0:
            raise ValueError(f"refine.restart must be >= 0, got {self.restart}")
        for name in ("init_size", "parents", "q", "prescreen_pool", "restart_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"refine.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.smooth <= 1:
            raise ValueError(f"refine.smooth must be in [0, 1], got {self.smooth}")
        if not 0 < self.prescreen_keep <= 1:
            raise ValueError(f"refine.prescreen_keep must be in (0, 1], got {self.prescreen_keep}")


class _Prescreen:
    """Cached scores of a cheap evaluator; they are not archived and cost no budget."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.cache: dict[Arch, float] = {}

    def best(self, archs: Sequence[Arch], keep: int) -> list[Arch]:
        """The ``keep`` archs of ``archs`` the cheap evaluator rates highest (stable order)."""
        new = [a for a in archs if a not in self.cache]
        for arch, s in zip(new, self.evaluator.evaluate(new), strict=True):
            self.cache[arch] = s.value
        return sorted(archs, key=lambda a: -ranked(self.cache[a]))[:keep]


def _parents(
    run: Tracker,
    cfg: RefineConfig,
    origin: int,
    predictor: Predictor | None,
    costs: Costs | None = None,
) -> list[Entry]:
    """The finite-scored archs since ``origin``, best first: by observed score, or with
    ``smooth`` > 0 and a fitted ``predictor`` by ``(1 - smooth) * observed + smooth *
    predicted``, so one lucky noisy score does not hold the search; with ``costs``, in
    NSGA-II's order of that score and the costs."""
    entries = finite(run.history[origin:])
    key = [e.score.value for e in entries]
    if cfg.smooth and predictor is not None:
        predicted = predictor.predict([e.arch for e in entries]).mean.tolist()
        key = [(1 - cfg.smooth) * k + cfg.smooth * p for k, p in zip(key, predicted, strict=True)]
    if costs is not None:
        order = nsga2_order(objective_points(key, [e.arch for e in entries], costs))
        return [entries[i] for i in order]
    return [entries[i] for i in sorted(range(len(entries)), key=lambda i: -key[i])]


def _candidates(
    run: Tracker, cfg: RefineConfig, rng: random.Random, parents: Sequence[Entry]
) -> list[Arch]:
    """Unseen feasible mutants of ``parents`` (best first), taken ``cfg.parents`` at a time
    until some exist; [] when none is left."""
    out: dict[Arch, None] = {}
    for start in range(0, len(parents), cfg.parents):
        for parent in parents[start : start + cfg.parents]:
            mutants = run.space.neighbours(parent.arch)
            if cfg.mutations is not None and cfg.mutations < len(mutants):
                mutants = rng.sample(mutants, cfg.mutations)
            for m in mutants:
                if m not in run.seen and m not in out and run.feasible(m):
                    out[m] = None
        if out:
            break
    return list(out)


def _rank(
    predictor: Predictor,
    cands: list[Arch],
    explore: float,
    costs: Costs | None = None,
    scored: Sequence[Entry] = (),
) -> list[Arch]:
    """``cands`` by the fitted ``predictor``'s score plus ``explore`` times its std, best first;
    with ``costs``, by the hypervolume that this optimistic score would add to the front of
    ``scored`` (one cost; ties and more costs: NSGA-II's order of the predictions)."""
    pred = predictor.predict(cands)
    utility = (pred.mean + explore * pred.std).tolist()
    if costs is None:
        return [cands[i] for i in sorted(range(len(cands)), key=lambda i: -utility[i])]
    mine = objective_points(utility, cands, costs)
    order = nsga2_order(mine)
    if mine.shape[1] != 2 or not scored:
        return [cands[i] for i in order]
    front = objectives(scored, costs)
    reference = tuple(np.maximum(front.max(0), mine.max(0)) + 1.0)
    base = hypervolume_2d(front, reference)
    gain = [hypervolume_2d(np.vstack([front, m]), reference) - base for m in mine]
    position = {int(i): k for k, i in enumerate(order)}
    return [cands[i] for i in sorted(range(len(cands)), key=lambda i: (-gain[i], position[i]))]


def refine(
    evaluator: Evaluator,
    budget: int,
    rng: random.Random,
    make_predictor: Callable[[SearchSpace], Predictor | None],
    archive: Archive | None = None,
    feasible: Feasible | None = None,
    cfg: RefineConfig | None = None,
    init: Sequence[Arch] = (),
    prescreen: Evaluator | None = None,
    costs: Costs | None = None,
) -> Tracker:
    """Run the refiner until ``budget`` archs are scored; returns the search's :class:`Tracker`.

    ``make_predictor(space)`` builds the predictor once; it is refit every generation (``None``:
    no predictor, candidates are scored in random order).
    ``init`` archs (scored first, from the archive when it holds them) replace random initial
    samples; with ``prescreen``, random initial samples are the best ``1/prescreen_pool`` of
    ``prescreen_pool`` times as many draws by the cheap evaluator. ``costs(arch)``: further
    objectives to minimise (see the module docstring).
    """
    cfg = cfg or RefineConfig()
    run = Tracker(evaluator, budget, archive, feasible)
    screen = _Prescreen(prescreen) if prescreen is not None else None
    run.score_init(init)

    def fresh(n: int, stage: str) -> None:
        if n <= 0:
            return
        pool: list[Arch] = []
        draws = n * (cfg.prescreen_pool if screen else 1)
        while len(pool) < draws:
            arch = run.sample_unseen(rng)
            if arch not in pool:
                pool.append(arch)
        run.score(screen.best(pool, n) if screen else pool, stage=stage)

    fresh(min(cfg.init_size - len(run.history), run.remaining), "init")
    predictor = make_predictor(run.space)
    origin, local_best, last = 0, run.best()[0].rank, len(run.history)
    while run.remaining > 0:
        if costs is None:
            top = max(e.rank for e in run.history[origin:])
            if top > local_best:
                local_best, last = top, len(run.history)
        elif _joined_front(run.history[origin:], costs, last - origin):
            last = len(run.history)
        if cfg.restart and len(run.history) - last >= cfg.restart:
            origin = len(run.history)
            fresh(min(cfg.restart_size, run.remaining), "restart")
            last = len(run.history)
            local_best = max(e.rank for e in run.history[origin:])
            continue
        # the predictor is refit on every finite score once a generation (it sits out while
        # there are fewer than two)
        train = finite(run.history)
        fitted = predictor if predictor is not None and len(train) >= 2 else None
        if fitted is not None:
            fitted.fit([e.arch for e in train], [e.score.value for e in train])
        cands = _candidates(run, cfg, rng, _parents(run, cfg, origin, fitted, costs))
        if not cands:
            run.score([run.sample_unseen(rng)], stage="refine")
            continue
        if screen is not None:
            cands = screen.best(cands, max(cfg.q, round(cfg.prescreen_keep * len(cands))))
        if predictor is None:  # the ablation of a predictor-free local search
            cands = rng.sample(cands, len(cands))
        elif fitted is not None:  # else, in the order they were found
            cands = _rank(fitted, cands, cfg.explore, costs, finite(run.history))
        run.score(cands[: min(cfg.q, run.remaining)], stage="refine")
    return run


def _joined_front(entries: Sequence[Entry], costs: Costs, since: int) -> bool:
    """Whether an entry from index ``since`` on is on the front of ``entries``."""
    front = non_dominated_fronts(objectives(entries, costs))[0]
    return bool((front >= since).any())
