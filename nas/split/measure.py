"""How differently an edge's candidate ops make the supernet behave, and the edge to split.

"NAS-LID: Efficient Neural Architecture Search with Local Intrinsic Dimension"
(arXiv 2211.12759) characterises an op on an edge by the layer-wise local intrinsic
dimension (LID) of the supernet's features with that op fixed there (the other edges sampled
from the sub-supernet's archs), and splits the supernet along the edge whose ops fall most
clearly into two groups by the cosine similarity of those LID vectors.
"Generalizing Few-Shot NAS with Gradient Matching" (GM-NAS, arXiv 2203.15207) compares
the ops by the cosine similarity of the gradients they induce on the shared weights; it is
here behind the same interface (``method="gm"``), at the memory cost of one gradient of the
whole supernet per op.

Both leave the supernet's weights and BatchNorm statistics as they found them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import SpectralClustering
from torch import nn

from nas.evaluate.oneshot import batchnorm_kept
from nas.evaluate.proxies.lid import lid
from nas.spaces import OpWeights
from nas.split.restriction import Restriction
from nas.supernet import MixedOp, Supernet

Batch = tuple[torch.Tensor, torch.Tensor]
METHODS = ("lid", "gm")


Probe = tuple[int, OpWeights, Batch]


def op_probes(
    restriction: Restriction,
    kind: str,
    edge: int,
    batches: Sequence[Batch],
    paths: int,
    rng: random.Random,
) -> Iterator[Probe]:
    """``(i, weights, batch)``: for the ``i``-th allowed op of ``edge``, ``paths`` sampled
    paths with that op fixed there (on the batches' device), each with every batch."""
    device = batches[0][0].device
    for i, op in enumerate(restriction.allowed[kind][edge]):
        for _ in range(paths):
            weights = restriction.with_op(rng, kind, edge, op)
            weights = {k: w.to(device) for k, w in weights.items()}
            for batch in batches:
                yield i, weights, batch


class _FixedPath(nn.Module):
    """``supernet`` with its op weights fixed: a one-argument network for the ``lid`` proxy."""

    def __init__(self, supernet: Supernet, weights: OpWeights) -> None:
        super().__init__()
        self.supernet = supernet
        self.weights = weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.weights)


def lid_vectors(supernet: Supernet, probes: Iterable[Probe], ops: int, k: int = 20) -> torch.Tensor:
    """``[ops, layers]``: per op, the mean over its ``probes`` of the ``lid`` proxy: each
    cell's output LID (MLE, ``k`` neighbours, train-mode BatchNorm)."""
    rows: list[list[torch.Tensor]] = [[] for _ in range(ops)]
    with torch.no_grad():
        for i, weights, (x, _y) in probes:
            rows[i].append(lid(_FixedPath(supernet, weights), x, k=k).double().cpu())
    return torch.stack([torch.stack(r).nanmean(0) for r in rows])


def gradient_vectors(
    supernet: Supernet, probes: Iterable[Probe], ops: int, edge: int
) -> torch.Tensor:
    """``[ops, P]``: per op, the mean over its ``probes`` of the cross-entropy loss's gradient
    with respect to every weight outside the mixed ops of ``edge`` (GM-NAS's shared weights)."""
    own = {
        id(p)
        for name, m in supernet.named_modules()
        if isinstance(m, MixedOp) and name.endswith(f"edges.{edge}")
        for p in m.parameters()
    }
    shared = [p for p in supernet.parameters() if p.requires_grad and id(p) not in own]
    totals = torch.zeros(ops, sum(p.numel() for p in shared), device=shared[0].device)
    counts = torch.zeros(ops, 1, device=totals.device)
    for i, weights, (x, y) in probes:
        loss = F.cross_entropy(supernet(x, weights), y)
        grads = torch.autograd.grad(loss, shared, allow_unused=True)
        totals[i] += torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).flatten()
                for g, p in zip(grads, shared, strict=True)
            ]
        )
        counts[i] += 1
    return (totals / counts).cpu()


def cosine_similarity(vectors: torch.Tensor) -> np.ndarray:
    """``[n, n]`` cosine similarities of the rows of ``vectors`` (NaN entries read as 0)."""
    v = torch.nan_to_num(vectors.double())
    return F.cosine_similarity(v[:, None, :], v[None, :, :], dim=-1).numpy()


def affinities(similarities: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Graph affinities ``exp(-(1 - cos) / s)`` of several edges' ``[n, n]`` cosine
    similarities, with one scale ``s`` for all: the median cosine distance between two ops
    of the same edge, over every edge.

    One scale keeps the edges' cuts comparable: raw LID vectors are positive and alike
    (cosine ~0.999 between any two ops), so the affinity must spread the small distances that
    separate ops, but by the same measure on every edge (rescaling each edge on its own,
    e.g. by centring its vectors, makes any edge look cleanly separable)."""
    distances = [d for s in similarities for d in (1 - s)[np.triu_indices(len(s), 1)]]
    scale = float(np.median(distances)) if distances else 0.0
    scale = scale if scale > 1e-12 else 1.0  # all alike: every affinity ~1, no clean cut
    return [np.maximum(np.exp(-(1 - s) / scale), 1e-12) for s in similarities]


@dataclass(frozen=True)
class Bipartition:
    """Two groups of an edge's op indices and how well they separate (normalised cut of the
    similarity graph: lower is a cleaner split)."""

    groups: tuple[tuple[int, ...], tuple[int, ...]]
    cut: float


def bipartition(ops: Sequence[int], affinity: np.ndarray, seed: int = 0) -> Bipartition:
    """Split ``ops`` in two non-empty groups by spectral clustering of their ``[n, n]``
    ``affinity`` (symmetric, positive, 1 on the diagonal; see ``affinities``)."""
    n = len(ops)
    if n < 2:
        raise ValueError(f"an edge needs two ops or more to split, got {list(ops)}")
    if n == 2:
        labels = np.array([0, 1])
    else:
        labels = SpectralClustering(
            2, affinity="precomputed", random_state=seed, assign_labels="discretize"
        ).fit_predict(affinity)
        if labels.min() == labels.max():  # one cluster: cut off the least similar op
            labels = (np.arange(n) == affinity.sum(1).argmin()).astype(int)
    a, b = labels == labels[0], labels != labels[0]
    cut = affinity[np.ix_(a, b)].sum()
    ncut = float(cut / affinity[a].sum() + cut / affinity[b].sum())
    groups = (tuple(int(o) for o in np.asarray(ops)[a]), tuple(int(o) for o in np.asarray(ops)[b]))
    return Bipartition(groups, ncut)


@dataclass(frozen=True)
class Split:
    """The edge chosen to split a sub-supernet, its op groups, and every edge's cut."""

    kind: str
    edge: int
    groups: tuple[tuple[int, ...], tuple[int, ...]]
    cuts: dict[str, float]


def choose_split(
    supernet: Supernet,
    restriction: Restriction,
    batches: Sequence[Batch],
    method: str = "lid",
    paths: int = 4,
    seed: int = 0,
    k: int = 20,
) -> Split:
    """The splittable edge whose ops ``method`` separates most cleanly into two groups."""
    if method not in METHODS:
        raise ValueError(f"unknown split method {method!r}; known: {list(METHODS)}")
    rng = random.Random(seed)
    edges = restriction.splittable()
    if not edges:
        raise ValueError("no edge left to split: every edge allows a single op")
    similarities = []
    with batchnorm_kept(supernet):  # train-mode forwards move BN statistics
        for kind, edge in edges:
            ops = restriction.allowed[kind][edge]
            probes = op_probes(restriction, kind, edge, batches, paths, rng)
            if method == "lid":
                vectors = lid_vectors(supernet, probes, len(ops), k)
            else:
                vectors = gradient_vectors(supernet, probes, len(ops), edge)
            similarities.append(cosine_similarity(vectors))
    parts = [
        bipartition(restriction.allowed[kind][edge], affinity, seed)
        for (kind, edge), affinity in zip(edges, affinities(similarities), strict=True)
    ]
    best = min(range(len(edges)), key=lambda i: parts[i].cut)
    kind, edge = edges[best]
    cuts = {f"{k}:{e}": part.cut for (k, e), part in zip(edges, parts, strict=True)}
    return Split(kind, edge, parts[best].groups, cuts)
