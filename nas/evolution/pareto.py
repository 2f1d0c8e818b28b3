"""Several objectives at once: Pareto fronts, crowding and hypervolume.

Every objective is *minimised* (a score to maximise enters negated); NaN counts as the worst
value. Points are ``[N, M]`` arrays (N candidates, M objectives). The non-dominated sorting and
the crowding distance are NSGA-II's ("A Fast and Elitist Multiobjective Genetic Algorithm:
NSGA-II", IEEE Transactions on Evolutionary Computation, 2002): a candidate's front is the
number of fronts peeled off before it is non-dominated, and within a front the candidates far
from their neighbours (the front's ends first) are preferred, which keeps the front spread.
"""

from __future__ import annotations

import numpy as np


def _clean(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"points must be [candidates, objectives], got shape {p.shape}")
    return np.where(np.isnan(p), np.inf, p)


def dominated_by(points: np.ndarray) -> np.ndarray:
    """``d[i, j]``: candidate ``j`` dominates ``i`` (no worse in every objective, better in
    one). ``[N, N]`` booleans."""
    p = _clean(points)
    no_worse = (p[None, :, :] <= p[:, None, :]).all(-1)
    better = (p[None, :, :] < p[:, None, :]).any(-1)
    return no_worse & better


def non_dominated_fronts(points: np.ndarray) -> list[np.ndarray]:
    """The candidates' indices, front by front: the first front is the non-dominated set,
    each next one is non-dominated once the fronts before it are removed. Every index appears
    in exactly one front; within a front, in increasing order. ``O(N^2)`` memory: for a
    population, not for a whole space."""
    dominated = dominated_by(points)
    remaining = np.ones(len(dominated), dtype=bool)
    fronts = []
    while remaining.any():
        front = remaining & ~(dominated & remaining[None, :]).any(1)
        fronts.append(np.flatnonzero(front))
        remaining &= ~front
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Each candidate's crowding distance within ``points`` (one front): over the objectives,
    the sum of the gap between its two neighbours in that objective, over the objective's
    range; the ends of every objective get ``inf``. ``[N]``."""
    p = _clean(points)
    n, m = p.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(p[:, k], kind="stable")
        values = p[order, k]
        distance[order[[0, -1]]] = np.inf
        span = values[-1] - values[0]
        if not np.isfinite(span) or span == 0:
            continue
        distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def nsga2_order(points: np.ndarray) -> np.ndarray:
    """The candidates from best to worst as NSGA-II selects them: by front, then by crowding
    distance (largest first), then by index. ``[N]`` indices."""
    rank = np.empty(len(points), dtype=int)
    crowd = np.empty(len(points))
    p = _clean(points)
    for i, front in enumerate(non_dominated_fronts(p)):
        rank[front] = i
        crowd[front] = crowding_distance(p[front])
    return np.lexsort((np.arange(len(p)), -crowd, rank))


def hypervolume_2d(points: np.ndarray, reference: tuple[float, float]) -> float:
    """The area that the points dominate up to ``reference`` (two minimised objectives; points
    not better than the reference in both add nothing). ``O(N log N)``: fine for a whole
    space's 15,625 cells."""
    p = _clean(points)
    if p.shape[1] != 2:
        raise ValueError(f"hypervolume_2d needs two objectives, got {p.shape[1]}")
    rx, ry = reference
    p = p[(p[:, 0] < rx) & (p[:, 1] < ry)]
    if not len(p):
        return 0.0
    p = p[np.lexsort((p[:, 1], p[:, 0]))]  # by the first objective, ties by the second
    lowest_before = np.concatenate([[ry], np.minimum.accumulate(p[:, 1])[:-1]])
    front = p[p[:, 1] < lowest_before]  # the staircase: the second objective falls
    xs = np.append(front[1:, 0], rx)
    return float(((xs - front[:, 0]) * (ry - front[:, 1])).sum())


def knee(points: np.ndarray) -> int:
    """The knee of a 2-D front ``[N, 2]`` (both minimised; rows of the front only): the row
    farthest from the line through the front's two ends, each objective scaled to [0, 1]
    over the front (the first end with one point or a flat front)."""
    p = np.asarray(points, dtype=float)
    if len(p) <= 2:
        return 0
    span = p.max(0) - p.min(0)
    q = (p - p.min(0)) / np.where(span > 0, span, 1.0)
    a, b = q[np.argmin(q[:, 0])], q[np.argmax(q[:, 0])]
    d = b - a
    if not d.any():
        return 0
    distance = np.abs(d[0] * (q[:, 1] - a[1]) - d[1] * (q[:, 0] - a[0])) / np.hypot(*d)
    return int(np.argmax(distance))
