"""The data of a retraining: the whole training split (both search halves) with cutout, the
test split for validation (the DARTS evaluation protocol reports test accuracy)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from nas.data.datamodule import make_loader
from nas.data.registry import DatasetBundle, build_dataset, dataset_shape, download_dataset


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
    """Train on the full training split (``cutout`` > 0: with cutout), validate on the test split."""

    def __init__(self, cfg: Any, batch_size: int, cutout: int, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = seed  # shuffles the training batches
        self.batch_size = batch_size
        self.cutout = cutout
        self.bundle: DatasetBundle | None = None

    def prepare_data(self) -> None:
        download_dataset(self.cfg)

    def setup(self, stage: str | None = None) -> None:
        if self.bundle is None:
            self.bundle = build_dataset(self.cfg, download=False)

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
        train = self.bundle.train
        if self.cutout > 0:
            train = Cutout(train, self.cutout, self.bundle.image_size)
        return self._loader(train, True)

    def val_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.bundle.test, False)
