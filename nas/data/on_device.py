"""Batches from a dataset held in the memory of the training device (``dataset.on_device``).

For CIFAR-sized data a GPU step takes milliseconds, and a loader that decodes, crops and
copies every image on the host leaves the GPU waiting. :func:`materialise` reads a split
once, without augmentation, into one tensor; :class:`DeviceLoader` then shuffles and augments
there (random crops from a zero-padded border and horizontal flips, as the host transforms do:
``nas.data.registry``), so a batch costs a few kernel launches and no host work.

The order and the augmentation of epoch ``e`` follow from ``seed + e`` alone (drawn on the
host, moved once per epoch), so a loader restored from :meth:`DeviceLoader.state_dict`
continues with the batch an uninterrupted run would take next. Under DDP each rank takes
its own shard of every epoch's order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset


def materialise(
    ds: Dataset, device: torch.device, workers: int = 0, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [N, C, H, W] float32, labels [N] int64)`` of ``ds`` on ``device``."""
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers)
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs).to(device), torch.cat(ys).to(device)


def crop_and_flip(
    x: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    flip: torch.Tensor,
    padding: int,
    fill: Sequence[float],
) -> torch.Tensor:
    """Each image of ``x [B, C, H, W]`` cropped at ``(top[b], left[b])`` (in ``[0, 2 *
    padding]``) from its border padded with ``fill`` (per channel), then mirrored left-right
    where ``flip[b]``; the result is in the channels-last layout."""
    b, c, h, w = x.shape
    p = padding
    value = torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    padded = value.expand(b, c, h + 2 * p, w + 2 * p).clone()
    padded[:, :, p : p + h, p : p + w] = x
    rows = top[:, None] + torch.arange(h, device=x.device)  # [B, H]
    cols = left[:, None] + torch.arange(w, device=x.device)  # [B, W]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [B,C,H,W]


class DeviceLoader:
    """Batches ``(x [B, C, H, W], y [B])`` of ``images``/``labels``, already on their device.

    Args:
        images, labels: the split, unaugmented (:func:`materialise`).
        batch_size: images per batch.
        shuffle: a new order every epoch (``seed + epoch``) and the ragged last batch dropped;
            else the stored order, every image once.
        seed: the base of every epoch's order and augmentation.
        padding, fill: with ``padding`` > 0 (and ``shuffle``), random crops from a border of
            ``padding`` pixels of value ``fill`` (per channel: black after normalisation),
            and random flips; 0: no augmentation.

    Each ``iter()`` starts the next epoch (cut short or not), unless a state was just loaded:
    then it continues that epoch where the state says. Lightning keeps :meth:`state_dict` in
    its checkpoints, so a resumed search sees the batches an uninterrupted one would.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        padding: int = 0,
        fill: Sequence[float] = (),
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.padding, self.fill = (padding if shuffle else 0), tuple(fill)
        spread = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if spread else 0
        self.replicas = dist.get_world_size() if spread else 1
        self.epoch = -1  # the first iter() starts epoch 0
        self.next_batch = 0  # of the current epoch: where a restored loader continues
        self._restored = False

    def _shard(self) -> int:
        """Images per rank and epoch."""
        return len(self.images) // self.replicas if self.shuffle else len(self.images)

    def __len__(self) -> int:
        n, b = self._shard(), self.batch_size
        return n // b if self.shuffle else -(-n // b)

    def _epoch_draws(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's order of the epoch and its crops ``[n, 3]`` (top, left, flip)."""
        n = len(self.images)
        if not self.shuffle:
            return torch.arange(n, device=self.images.device), None
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=g)
        order = order[self.rank : self.replicas * self._shard() : self.replicas]
        crops = None
        if self.padding:
            corner = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=g)
            flips = torch.randint(0, 2, (n, 1), generator=g)
            crops = torch.cat([corner, flips], 1)[order].to(self.images.device)
        return order.to(self.images.device), crops

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self._restored:
            self.epoch, self.next_batch = self.epoch + 1, 0
        self._restored = False
        order, crops = self._epoch_draws()
        start, b = self.next_batch, self.batch_size
        for i in range(start, len(self)):
            index = order[i * b : (i + 1) * b]
            x = self.images[index]
            if crops is not None:
                c = crops[i * b : (i + 1) * b]
                x = crop_and_flip(x, c[:, 0], c[:, 1], c[:, 2].bool(), self.padding, self.fill)
            self.next_batch = i + 1
            yield x, self.labels[index]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "next_batch": self.next_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at ``state``'s place: the next ``iter()`` yields its epoch's remaining
        batches (or, after a finished epoch, the next epoch's)."""
        self.epoch, self.next_batch = int(state["epoch"]), int(state["next_batch"])
        if self.next_batch >= len(self):
            self.epoch, self.next_batch = self.epoch + 1, 0
        self._restored = True
