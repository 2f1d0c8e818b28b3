"""The search LightningDataModule with the DARTS train/val split.

The training set is shuffled once with ``dataset.split_seed`` and cut in two: the first
``train_portion`` trains the supernet's weights, the rest trains the architecture (and is
the validation set of the search). The test set is never used by the search.

With ``dataset.on_device`` the splits are read once into the training device's memory and
batched, shuffled and augmented there (:mod:`nas.data.on_device`): for CIFAR-sized data on a
GPU, whose steps outrun a host loader.

Downloads happen in :meth:`SearchDataModule.prepare_data` only, which Lightning runs on one
process before any ``setup``; ``setup`` (on every DDP rank) reads the files and never fetches
them, so ranks do not race to write the same files.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from torchdata.stateful_dataloader import StatefulDataLoader

from nas.data.on_device import DeviceLoader, materialise
from nas.data.registry import DatasetBundle, build_dataset, dataset_shape, download_dataset
from nas.errors import ConfigError

# torchdata's loader calls a torch API that now warns on every new iterator
warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)


def make_loader(
    ds: Dataset, shuffle: bool, batch_size: int, workers: int, seed: int = 0
) -> StatefulDataLoader:
    """A loader as every training of the project uses one: shuffled training batches drop
    their ragged last batch; workers persist across epochs; memory pinned for a GPU.

    The loader is resumable (torchdata's ``StatefulDataLoader``: Lightning stores its position
    in every checkpoint and a mid-epoch resume continues with the next batch), and epoch ``e``
    is shuffled by ``seed + e`` alone (a ``DistributedSampler``, which Lightning advances with
    ``set_epoch``; it shards the data when a process group is up), so a resumed run sees the
    batches an uninterrupted one would.
    """
    sampler = None
    if shuffle:
        spread = dist.is_available() and dist.is_initialized()
        sampler = DistributedSampler(
            ds,
            num_replicas=dist.get_world_size() if spread else 1,
            rank=dist.get_rank() if spread else 0,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
    return StatefulDataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=shuffle,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


class SearchDataModule(pl.LightningDataModule):
    """``train_dataloader`` yields ``{"train": (x, y), "arch": (x, y)}`` from the two halves."""

    def __init__(self, cfg: Any, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = seed  # shuffles the two halves' batches (``seed``, ``seed + 1``)
        self.bundle: DatasetBundle | None = None
        self.weights_set: Dataset | None = None
        self.arch_set: Dataset | None = None
        #: the splits' images without augmentation (:meth:`fixed_batches`)
        self.fixed_sets: dict[str, Dataset] = {}
        #: the splits in the training device's memory (``dataset.on_device``)
        self.device_sets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

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
        fixed = self.bundle.train_fixed
        self.fixed_sets = {
            "weights": Subset(fixed, order[:cut]),
            "arch": Subset(fixed, order[cut:]),
            "test": self.bundle.test,
        }

    @property
    def num_classes(self) -> int:
        """Known before ``setup`` (and before any download) for the registered datasets."""
        return self.bundle.num_classes if self.bundle is not None else dataset_shape(self.cfg)[0]

    @property
    def in_channels(self) -> int:
        return self.bundle.in_channels if self.bundle is not None else dataset_shape(self.cfg)[1]

    def _loader(
        self, ds: Dataset, shuffle: bool, batch_size: int, seed: int = 0
    ) -> StatefulDataLoader:
        return make_loader(ds, shuffle, batch_size, int(self.cfg.num_workers), seed)

    def _device_loader(self, split: str, shuffle: bool, batch_size: int, seed: int = 0):
        """A :class:`DeviceLoader` of ``split`` on the trainer's device (read once)."""
        if split not in self.device_sets:
            device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
            workers = int(self.cfg.num_workers)
            self.device_sets[split] = materialise(self.fixed_sets[split], device, workers)
        cfg = self.cfg
        padding = int(cfg.crop_padding) if cfg.augment else 0  # DeviceLoader: shuffled only
        fill = [-m / s for m, s in zip(cfg.mean, cfg.std, strict=True)]  # black, normalised
        if padding and len(fill) != self.in_channels:
            raise ConfigError(
                f"dataset.on_device crops pad with black: dataset.mean and dataset.std need "
                f"{self.in_channels} values (one per channel), got {len(fill)}"
            )
        return DeviceLoader(*self.device_sets[split], batch_size, shuffle, seed, padding, fill)

    def train_dataloader(self) -> CombinedLoader:
        bs = self.cfg.batch_size
        if self.cfg.on_device:
            halves = {
                "train": self._device_loader("weights", True, bs, self.seed),
                "arch": self._device_loader("arch", True, bs, self.seed + 1),
            }
        else:
            halves = {
                "train": self._loader(self.weights_set, True, bs, self.seed),
                "arch": self._loader(self.arch_set, True, bs, self.seed + 1),
            }
        return CombinedLoader(halves, mode="min_size")

    def val_dataloader(self) -> StatefulDataLoader | DeviceLoader:
        if self.cfg.on_device:
            return self._device_loader("arch", False, self.cfg.eval_batch_size)
        return self._loader(self.arch_set, False, self.cfg.eval_batch_size)

    def test_dataloader(self) -> StatefulDataLoader:
        """The held-out test split: for final evaluation and retraining, never for search."""
        return self._loader(self.bundle.test, False, self.cfg.eval_batch_size)

    def fixed_batches(
        self, split: str, n: int, batch_size: int, seed: int | None = None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first ``n`` batches of ``split`` (``"weights"``, ``"arch"`` or ``"test"``), in a
        fixed order (shuffled by ``seed`` when given), without augmentation, materialised once:
        the one-shot evaluator scores every subnet on the same pixels, in every process. Fewer
        when the split runs out."""
        self.setup()
        ds = self.fixed_sets[split]
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        loader = DataLoader(ds, batch_size=batch_size, shuffle=g is not None, generator=g)
        return [batch for batch, _ in zip(loader, range(n), strict=False)]
