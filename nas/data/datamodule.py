"""The search LightningDataModule with the DARTS train/val split.

The training set is shuffled once with ``dataset.split_seed`` and cut in two: the first
``train_portion`` trains the supernet's weights, the rest trains the architecture (and is
the validation set of the search). The test set is never used by the search.

Downloads happen in :meth:`SearchDataModule.prepare_data` only, which Lightning runs on one
process before any ``setup``; ``setup`` (on every DDP rank) reads the files and never fetches
them, so ranks do not race to write the same files.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, Subset

from nas.data.registry import DatasetBundle, build_dataset, dataset_shape, download_dataset
from nas.errors import ConfigError


def make_loader(ds: Dataset, shuffle: bool, batch_size: int, workers: int) -> DataLoader:
    """A loader as every training of the project uses one: shuffled training batches drop
    their ragged last batch; workers persist across epochs; memory pinned for a GPU."""
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=shuffle,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


class SearchDataModule(pl.LightningDataModule):
    """``train_dataloader`` yields ``{"train": (x, y), "arch": (x, y)}`` from the two halves."""

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.bundle: DatasetBundle | None = None
        self.weights_set: Dataset | None = None
        self.arch_set: Dataset | None = None

    def prepare_data(self) -> None:
        """Download the dataset's files when ``dataset.download`` is true (one process only)."""
        download_dataset(self.cfg)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets from files already present (never downloads) and split them."""
        if self.bundle is not None:
            return
        cfg = self.cfg
        if not 0.0 < cfg.train_portion < 1.0:
            raise ConfigError(f"dataset.train_portion must be in (0, 1), got {cfg.train_portion}")
        self.bundle = build_dataset(cfg, download=False)
        n = len(self.bundle.train)
        if cfg.limit_train:
            n = min(n, int(cfg.limit_train))
        order = torch.randperm(
            len(self.bundle.train), generator=torch.Generator().manual_seed(cfg.split_seed)
        )
        order = order[:n].tolist()
        cut = int(n * cfg.train_portion)
        if cut < cfg.batch_size or n - cut < cfg.batch_size:
            raise ConfigError(
                f"dataset {cfg.name!r}: {n} training images split {cut}/{n - cut} by "
                f"dataset.train_portion={cfg.train_portion} leave a half smaller than "
                f"dataset.batch_size={cfg.batch_size}"
            )
        self.weights_set = Subset(self.bundle.train, order[:cut])
        self.arch_set = Subset(self.bundle.train, order[cut:])

    @property
    def num_classes(self) -> int:
        """Known before ``setup`` (and before any download) for the registered datasets."""
        return self.bundle.num_classes if self.bundle is not None else dataset_shape(self.cfg)[0]

    @property
    def in_channels(self) -> int:
        return self.bundle.in_channels if self.bundle is not None else dataset_shape(self.cfg)[1]

    def _loader(self, ds: Dataset, shuffle: bool, batch_size: int) -> DataLoader:
        return make_loader(ds, shuffle, batch_size, int(self.cfg.num_workers))

    def train_dataloader(self) -> CombinedLoader:
        bs = self.cfg.batch_size
        return CombinedLoader(
            {
                "train": self._loader(self.weights_set, True, bs),
                "arch": self._loader(self.arch_set, True, bs),
            },
            mode="min_size",
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.arch_set, False, self.cfg.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        """The held-out test split: for final evaluation and retraining, never for search."""
        return self._loader(self.bundle.test, False, self.cfg.eval_batch_size)

    def fixed_batches(
        self, split: str, n: int, batch_size: int, seed: int | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first ``n`` batches of ``split`` (``"weights"``, ``"arch"`` or ``"test"``), in a
        fixed order (shuffled by ``seed`` when given), materialised once: the one-shot
        evaluator scores every subnet on the same images. Fewer when the split runs out."""
        self.setup()
        ds = {"weights": self.weights_set, "arch": self.arch_set, "test": self.bundle.test}[split]
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        loader = DataLoader(ds, batch_size=batch_size, shuffle=g is not None, generator=g)
        return [batch for batch, _ in zip(loader, range(n), strict=False)]
