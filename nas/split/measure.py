"""How differently an edge's candidate ops make the supernet behave, and the edge to split.

"NAS-LID: Efficient Neural Architecture Search with Local Intrinsic Dimension"
(arXiv 2211.12759) characterises an op on an edge by the layer-wise local intrinsic
dimension (LID) of the supernet's features with that op fixed there (the other edges sampled
from the sub-supernet's archs), and splits the supernet along the edge whose ops fall most
clearly into two groups by the cosine similarity of those LID vectors (here of their
deviations from the edge's mean vector: raw LID vectors are positive and alike).
"Generalizing Few-Shot NAS with Gradient Matching" (GM-NAS, arXiv 2203.15207) compares
the ops by the cosine similarity of the gradients they induce on the shared weights; it is
here behind the same interface (``method="gm"``), at the memory cost of one gradient of the
whole supernet per op.

Both leave the supernet's weights and BatchNorm statistics as they found them.
"""

from __future__ import annotations

import copy
import random
import resource
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import SpectralClustering

from nas.evaluate.proxies.layers import forward_with_hooks
from nas.evaluate.proxies.lid import feature_layers, lid_mle
from nas.split.restriction import Restriction
from nas.supernet import MixedOp, Supernet

Batch = tuple[torch.Tensor, torch.Tensor]
METHODS = ("lid", "gm")


def lid_vectors(
    supernet: Supernet,
    restriction: Restriction,
    kind: str,
    edge: int,
    batches: Sequence[Batch],
    paths: int,
    rng: random.Random,
    k: int = 20,
) -> torch.Tensor:
    """``[ops, layers]``: per allowed op of ``edge``, the mean (over ``paths`` sampled paths
    and ``batches``) of each cell's output LID (MLE, ``k`` neighbours, train-mode BatchNorm)."""
    layers = feature_layers(supernet)
    ops = restriction.allowed[kind][edge]
    out = torch.zeros(len(ops), len(layers), dtype=torch.float64)
    with torch.no_grad():
        for i, op in enumerate(ops):
            rows = []
            for _ in range(paths):
                weights = _on(restriction.with_op(rng, kind, edge, op), batches[0][0].device)
                for x, _y in batches:
                    feats: list[torch.Tensor] = []
                    forward_with_hooks(
                        _bound(supernet, weights),
                        x,
                        layers,
                        lambda _m, _a, o, feats=feats: feats.append(o.detach()),
                    )
                    rows.append(torch.stack([lid_mle(f, k).mean() for f in feats]))
            out[i] = torch.stack(rows).nanmean(0).cpu()
    return out


def gradient_vectors(
    supernet: Supernet,
    restriction: Restriction,
    kind: str,
    edge: int,
    batches: Sequence[Batch],
    paths: int,
    rng: random.Random,
) -> torch.Tensor:
    """``[ops, P]``: per allowed op of ``edge``, the mean gradient of the cross-entropy loss
    with respect to every weight outside that edge's mixed ops (GM-NAS's shared weights)."""
    own = {
        id(p)
        for name, m in supernet.named_modules()
        if isinstance(m, MixedOp) and name.endswith(f"edges.{edge}")
        for p in m.parameters()
    }
    shared = [p for p in supernet.parameters() if p.requires_grad and id(p) not in own]
    ops = restriction.allowed[kind][edge]
    out = torch.zeros(len(ops), sum(p.numel() for p in shared))
    for i, op in enumerate(ops):
        total = torch.zeros(out.shape[1], device=shared[0].device)
        for _ in range(paths):
            weights = _on(restriction.with_op(rng, kind, edge, op), batches[0][0].device)
            for x, y in batches:
                loss = F.cross_entropy(supernet(x, weights), y)
                grads = torch.autograd.grad(loss, shared, allow_unused=True)
                total += torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).flatten()
                        for g, p in zip(grads, shared, strict=True)
                    ]
                )
        out[i] = (total / (paths * len(batches))).cpu()
    return out


def _on(weights: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: w.to(device) for k, w in weights.items()}


def _bound(supernet: Supernet, weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    """``supernet`` with ``weights`` fixed, as a one-argument module for the LID hooks."""

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.supernet = supernet

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.supernet(x, weights)

    return Fixed()


def cosine_similarity(vectors: torch.Tensor) -> np.ndarray:
    """``[n, n]`` cosine similarities of the rows of ``vectors`` (NaN entries read as 0)."""
    v = torch.nan_to_num(vectors.double())
    return F.cosine_similarity(v[:, None, :], v[None, :, :], dim=-1).numpy()


@dataclass(frozen=True)
class Bipartition:
    """Two groups of an edge's op indices and how well they separate (normalised cut of the
    similarity graph: lower is a cleaner split)."""

    groups: tuple[tuple[int, ...], tuple[int, ...]]
    cut: float


def bipartition(ops: Sequence[int], similarity: np.ndarray, seed: int = 0) -> Bipartition:
    """Split ``ops`` in two non-empty groups by spectral clustering of ``similarity`` (cosine;
    the affinity of two ops is their similarity, or ~0 when they point apart)."""
    n = len(ops)
    if n < 2:
        raise ValueError(f"an edge needs two ops or more to split, got {list(ops)}")
    affinity = np.clip(similarity, 1e-6, 1.0)
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
    state = copy.deepcopy(supernet.state_dict())  # train-mode forwards move BN statistics
    was_training = supernet.training
    rng = random.Random(seed)
    best: tuple[float, str, int, Bipartition] | None = None
    cuts = {}
    try:
        for kind, edge in restriction.splittable():
            if method == "lid":
                vectors = lid_vectors(supernet, restriction, kind, edge, batches, paths, rng, k)
                # LID vectors are positive and alike (cosine ~0.999 between any two ops):
                # compare the ops by their deviations from the edge's mean vector
                vectors = vectors - vectors.mean(0)
            else:
                vectors = gradient_vectors(supernet, restriction, kind, edge, batches, paths, rng)
            part = bipartition(restriction.allowed[kind][edge], cosine_similarity(vectors), seed)
            cuts[f"{kind}:{edge}"] = part.cut
            if best is None or part.cut < best[0]:
                best = (part.cut, kind, edge, part)
    finally:
        supernet.load_state_dict(state)
        supernet.train(was_training)
        supernet.zero_grad(set_to_none=True)
    if best is None:
        raise ValueError("no edge left to split: every edge allows a single op")
    _, kind, edge, part = best
    return Split(kind, edge, part.groups, cuts)


class PeakMemory:
    """Peak memory growth of a block in MB: CUDA's allocator peak on a GPU, the process's
    peak resident set on the CPU (0 when the block stayed below an earlier peak)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            self._start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.mb = max(0.0, (peak - self._start) / 2**20)
