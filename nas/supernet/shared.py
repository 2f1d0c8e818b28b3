"""Work that several edges of a supernet cell do on the same node state, done once.

In a cell, every state feeds several edges, and every edge runs every candidate op on it. Much
of that work is the same for all of them: the ReLU that every ReLU-conv op applies first, the
polyphase sub-grids of that ReLU output that the dilated convolutions read, and the pooling
(and, in training mode, the affine-free BatchNorm after it) of every pooling op of one stride.
:class:`SharedWork` memoises such results per state for the duration of one cell's forward;
autograd then sums the gradients of all consumers before back-propagating through the shared
work once. The values and gradients are exactly those of the unshared computation.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import torch
from torch import nn

__all__ = ["SharedWork"]


class SharedWork:
    """A memo of ``compute()`` results keyed by ``(state tensor, key)``, live between
    :meth:`open` and :meth:`close` (outside, :meth:`memo` just computes).

    The memo holds each state tensor it was asked about, so its ``id`` stays unique while the
    entry lives; closing drops everything, so nothing outlives the cell that produced it.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[int, Hashable], tuple[torch.Tensor, object]] | None = None

    def open(self) -> None:
        self._memo = {}

    def close(self) -> None:
        self._memo = None

    def memo(self, x: torch.Tensor, key: Hashable, compute: Callable[[], object]) -> object:
        """``compute()``, or the result memoised for ``(x, key)`` while open."""
        if self._memo is None:
            return compute()
        slot = (id(x), key)
        hit = self._memo.get(slot)
        if hit is None:
            hit = self._memo[slot] = (x, compute())
        return hit[1]

    def relu(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(x)``, once per state."""
        return self.memo(x, "relu", x.relu)  # type: ignore[return-value]

    def scope(self, cells: Iterable[nn.Module]) -> None:
        """Open the memo for the forward of each of ``cells`` and close it afterwards."""
        for cell in cells:
            cell.register_forward_pre_hook(lambda *_: self.open())
            cell.register_forward_hook(lambda *_: self.close())
