"""Architecture encodings for predictors, and the difference-of-architecture (delta) encoding of
"Delta-NAS: Difference of Architecture Encoding for Predictor-based Evolutionary Neural
Architecture Search" (arXiv 2411.14498).

The encoding of a space is :meth:`SearchSpace.encode`: one one-hot op row per edge of each cell
kind, flattened (NB201: 6 edges x 5 ops = 30; DARTS: 14 possible edges x 8 ops for the normal
and for the reduction cell = 224, absent edges holding ``none``, which also encodes the wiring).
``delta(a, b) = encode(b) - encode(a)`` has the same length, and its nonzeros name exactly the
rows that changed.

Per-arch *features* may follow the encoding (zero-cost proxies, parameters, FLOPs: signals
that lift predictors, "NAS-Bench-Suite-Zero", arXiv 2210.03230): a function of a batch of
archs giving ``[n, F]`` values on a common scale (standardised); the delta of two archs then
holds their differences too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from nas.spaces import Arch, SearchSpace

#: per-arch features: ``archs -> Tensor[n, F]``, standardised
Features = Callable[[Sequence[Arch]], torch.Tensor]


class ArchEncoder:
    """Cached :meth:`SearchSpace.encode` of many archs at once, followed by ``features``
    (``names``: what they are) when given: ``archs -> Tensor[n, D + F]``."""

    def __init__(
        self, space: SearchSpace, features: Features | None = None, names: Sequence[str] = ()
    ) -> None:
        if (features is None) != (not names):
            raise ValueError("predictor features need a function and their names, or neither")
        self.space = space
        self.features = features
        self.names = tuple(names)
        self._cache: dict[Arch, torch.Tensor] = {}

    @property
    def onehot_size(self) -> int:
        """``D``: the one-hot encoding's length (the first columns)."""
        return self.space.encoding_size

    @property
    def size(self) -> int:
        return self.onehot_size + len(self.names)

    def __call__(self, archs: Sequence[Arch]) -> torch.Tensor:
        if not archs:
            return torch.zeros(0, self.size)
        new = list(dict.fromkeys(a for a in archs if a not in self._cache))
        if new:
            onehot = torch.stack([self.space.encode(a) for a in new])
            if self.features is not None:
                extra = torch.as_tensor(self.features(new), dtype=onehot.dtype)
                if extra.shape != (len(new), len(self.names)):
                    raise ValueError(
                        f"predictor features {list(self.names)} gave shape "
                        f"{tuple(extra.shape)} for {len(new)} archs"
                    )
                onehot = torch.cat([onehot, extra], dim=1)
            self._cache.update(zip(new, onehot, strict=True))
        return torch.stack([self._cache[a] for a in archs])

    def delta(self, a: Arch, b: Arch) -> torch.Tensor:
        """``encode(b) - encode(a)``, ``[D]``."""
        enc = self([a, b])
        return enc[1] - enc[0]


def changed_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of one-hot rows that differ between every encoding of ``x [n, D]`` and ``y [m, D]``:
    ``[n, m]`` integers. It equals :meth:`SearchSpace.distance` on NB201; on DARTS a gene that
    changes its input counts twice (its old and its new edge)."""
    return (torch.cdist(x, y, p=1) / 2).round().long()
