"""The data of a retraining: the training split (both search halves) with cutout, and the test
split for the one test after the last epoch (the DARTS evaluation protocol reports the final
weights' test accuracy; the test split chooses nothing). Validation, when wanted, runs on a
part held out of the training split (``val_portion``)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset, Subset
from torchdata.stateful_dataloader import StatefulDataLoader

from nas.data.datamodule import make_loader
from nas.data.registry import DatasetBundle, build_dataset, dataset_shape, download_dataset
from nas.errors import ConfigError


class Cutout(Dataset):
    """``dataset`` whose images get one ``length`` x ``length`` square zeroed at a random place
    ("Improved Regularization of Convolutional Neural Networks with Cutout", arXiv 1708.04552),
    by torchvision's ``RandomErasing`` with a fixed square size."""

    def __init__(self, dataset: Dataset, length: int, image_size: int) -> None:
        from torchvision.transforms import RandomErasing

        self.dataset = dataset
        area = min(1.0, (length / image_size) ** 2)
        self.erase = RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any]:
        x, y = self.dataset[i]
        return self.erase(x), y


class RetrainDataModule(pl.LightningDataModule):
    """Train on the training split (``cutout`` > 0: with cutout) less the ``val_portion`` held
    out for validation (drawn by ``dataset.split_seed``, seen without augmentation; 0: no
    validation), test on the test split."""

    def __init__(
        self, cfg: Any, batch_size: int, cutout: int, seed: int = 0, val_portion: float = 0.0
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = seed  # shuffles the training batches
        self.batch_size = batch_size
        self.cutout = cutout
        self.val_portion = val_portion
        self.bundle: DatasetBundle | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def prepare_data(self) -> None:
        download_dataset(self.cfg)

    def setup(self, stage: str | None = None) -> None:
        if self.bundle is not None:
            return
        if not 0.0 <= self.val_portion < 1.0:
            raise ConfigError(f"retrain.val_portion must be in [0, 1), got {self.val_portion}")
        bundle = build_dataset(self.cfg, download=False)
        n = len(bundle.train)
        held = int(n * self.val_portion)
        if self.val_portion > 0 and held == 0:
            raise ConfigError(
                f"retrain.val_portion={self.val_portion} holds out none of the {n} training "
                f"images: raise it, or set 0 for no validation"
            )
        if held:
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(self.cfg.split_seed)
            ).tolist()
            self.train_set = Subset(bundle.train, order[held:])
            self.val_set = Subset(bundle.train_fixed, order[:held])
        else:
            self.train_set = bundle.train
        self.bundle = bundle

    @property
    def num_classes(self) -> int:
        return dataset_shape(self.cfg)[0]

    @property
    def in_channels(self) -> int:
        return dataset_shape(self.cfg)[1]

    def _loader(self, ds: Dataset, train: bool) -> StatefulDataLoader:
        size = self.batch_size if train else self.cfg.eval_batch_size
        return make_loader(ds, train, size, int(self.cfg.num_workers), self.seed)

    def train_dataloader(self) -> StatefulDataLoader:
        train = self.train_set
        if self.cutout > 0:
            train = Cutout(train, self.cutout, self.bundle.image_size)
        return self._loader(train, True)

    def val_dataloader(self) -> StatefulDataLoader | list:
        """The held-out part of the training split; none (no validation) without one."""
        return [] if self.val_set is None else self._loader(self.val_set, False)

    def test_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.bundle.test, False)
