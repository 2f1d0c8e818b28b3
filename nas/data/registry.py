"""Dataset registry: name -> train/test datasets with their shape facts.

Every builder takes the ``dataset`` config and whether it may download, and returns a
:class:`DatasetBundle`. torchvision datasets are downloaded when that is true (by default
``dataset.download``) and the machine is online; when the files are absent and cannot be
fetched, :class:`DatasetUnavailableError` names ``dataset.root`` and the files expected there.

The config is the one source of the data settings: ``dataset.mean``/``std`` normalise the
torchvision datasets, ``dataset.image_size`` (when set) resizes every image,
``dataset.crop_padding`` pads the random crops of augmentation, and ``dataset.test_fraction``
is the share of digits held out for testing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from nas.errors import ConfigError, DatasetUnavailableError


@dataclass
class DatasetBundle:
    """Train and test sets of one dataset. Items are ``(image [C, H, W] float, label int)``.

    ``train_eval``: the training images, in the same order, with the test transform (no
    random crop or flip), for what must see the same pixels in every process (one-shot
    scores, BatchNorm recalibration); ``None`` when ``train`` is not augmented.
    """

    train: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    train_eval: Dataset | None = None

    @property
    def train_fixed(self) -> Dataset:
        """The training images without augmentation."""
        return self.train if self.train_eval is None else self.train_eval


Builder = Callable[[Any, bool], DatasetBundle]  # (dataset config, may download) -> bundle


@dataclass(frozen=True)
class _Entry:
    builder: Builder
    num_classes: int | None  # known without reading any file (None: build to find out)
    in_channels: int | None
    downloads: bool  # its files can be fetched (otherwise ``download`` is ignored)


_DATASETS: dict[str, _Entry] = {}


def register_dataset(
    name: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    downloads: bool = False,
) -> Callable[[Builder], Builder]:
    """Register ``fn(cfg, download)`` under ``name``; give its class and channel counts when
    they are fixed, so :func:`dataset_shape` needs no file of it, and ``downloads=True`` when
    it can fetch its files."""

    def wrap(fn: Builder) -> Builder:
        _DATASETS[name] = _Entry(fn, num_classes, in_channels, downloads)
        return fn

    return wrap


def available_datasets() -> list[str]:
    return sorted(_DATASETS)


def _entry(cfg: Any) -> _Entry:
    try:
        return _DATASETS[cfg.name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {cfg.name!r} (dataset.name); known: {available_datasets()}"
        ) from None


def build_dataset(cfg: Any, *, download: bool | None = None) -> DatasetBundle:
    """The bundle of ``cfg.name``; an unknown name lists the registered ones.

    ``download``: whether absent files may be fetched (default ``dataset.download``); with
    ``False`` nothing is downloaded whatever the config says.
    """
    entry = _entry(cfg)
    return entry.builder(cfg, bool(cfg.download if download is None else download))


def download_dataset(cfg: Any) -> None:
    """Fetch the files of ``cfg.name`` when it downloads and ``dataset.download`` is true
    (a no-op otherwise); call it on one process only."""
    entry = _entry(cfg)
    if entry.downloads and cfg.download:
        entry.builder(cfg, True)


def dataset_shape(cfg: Any) -> tuple[int, int]:
    """``(num_classes, in_channels)`` of ``cfg.name``, without reading or downloading files
    where the registry knows them (otherwise from a bundle built with ``download=False``)."""
    entry = _entry(cfg)
    if entry.num_classes is not None and entry.in_channels is not None:
        return entry.num_classes, entry.in_channels
    bundle = entry.builder(cfg, False)
    return bundle.num_classes, bundle.in_channels


# -- torchvision datasets ---------------------------------------------------------------
def _transforms(cfg: Any, size: int, native: int | None, train: bool) -> Any:
    """PIL image -> normalised tensor ``[C, size, size]`` (``dataset.mean``/``std``).

    Images not of the ``native`` size (``None``: unknown, always) are resized (shorter side)
    to ``size`` first. With ``dataset.augment`` the training images are then randomly
    cropped from a ``dataset.crop_padding`` zero-padded border and flipped; every other image
    is centre-cropped to ``size`` (a no-op for square images).
    """
    from torchvision import transforms as T

    steps: list[Any] = [T.Resize(size)] if size != native else []
    if train and cfg.augment:
        padding = int(cfg.crop_padding)
        steps += [T.RandomCrop(size, padding=padding), T.RandomHorizontalFlip()]
    elif size != native:
        steps += [T.CenterCrop(size)]
    steps += [T.ToTensor(), T.Normalize(tuple(cfg.mean), tuple(cfg.std))]
    return T.Compose(steps)


def _torchvision(
    cfg: Any,
    make: Callable[[bool, Any], Dataset],
    expected: Sequence[str],
    download: bool,
    native: int,
    num_classes: int,
) -> DatasetBundle:
    """The bundle of ``make(train, transform)`` for both splits at ``dataset.image_size`` (else
    ``native``), with an actionable error when the files are absent."""
    root = Path(cfg.root).expanduser()
    size = cfg.image_size or native
    try:
        train = make(True, _transforms(cfg, size, native, True))
        test = make(False, _transforms(cfg, size, native, False))
        train_eval = make(True, _transforms(cfg, size, native, False)) if cfg.augment else None
    except (RuntimeError, OSError) as err:  # torchvision: "Dataset not found"; urllib: offline
        if download:
            action = "could not be downloaded"
        elif cfg.download:
            action = "is absent (SearchDataModule.prepare_data downloads it, before setup)"
        else:
            action = "is absent and dataset.download=false"
        raise DatasetUnavailableError(
            f"dataset {cfg.name!r} {action} under dataset.root={str(root)!r} ({err}). "
            f"Put these files there (or set dataset.root to where they are): {', '.join(expected)}"
        ) from None
    return DatasetBundle(train, test, num_classes, 3, size, train_eval)


@register_dataset("cifar10", num_classes=10, in_channels=3, downloads=True)
def cifar10(cfg: Any, download: bool) -> DatasetBundle:
    from torchvision.datasets import CIFAR10

    files = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
    files += ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"]
    return _torchvision(
        cfg,
        lambda tr, tf: CIFAR10(cfg.root, train=tr, transform=tf, download=download),
        files,
        download,
        native=32,
        num_classes=10,
    )


@register_dataset("cifar100", num_classes=100, in_channels=3, downloads=True)
def cifar100(cfg: Any, download: bool) -> DatasetBundle:
    from torchvision.datasets import CIFAR100

    files = ["cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"]
    return _torchvision(
        cfg,
        lambda tr, tf: CIFAR100(cfg.root, train=tr, transform=tf, download=download),
        files,
        download,
        native=32,
        num_classes=100,
    )


@register_dataset("svhn", num_classes=10, in_channels=3, downloads=True)
def svhn(cfg: Any, download: bool) -> DatasetBundle:
    from torchvision.datasets import SVHN

    def make(train: bool, tf: Any) -> Dataset:
        split = "train" if train else "test"
        return SVHN(cfg.root, split=split, transform=tf, download=download)

    files = ["train_32x32.mat", "test_32x32.mat"]
    return _torchvision(cfg, make, files, download, native=32, num_classes=10)


def load_image(path: str) -> Any:
    """torchvision's default image loader (RGB), naming the file when it cannot be read."""
    from torchvision.datasets.folder import default_loader

    try:
        return default_loader(path)
    except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise DatasetUnavailableError(
            f"{path}: unreadable image ({err}); replace or delete the file "
            "(dataset.train_dir / dataset.test_dir)"
        ) from None


@register_dataset("imagefolder")
def imagefolder(cfg: Any, download: bool = False) -> DatasetBundle:
    """torchvision ``ImageFolder`` trees ``<dir>/<class>/<image>`` for train and test.

    ``scripts/prepare_cifar10_jpeg.py`` writes this layout from the offline CIFAR-10 JPEGs.
    """
    from torchvision.datasets import ImageFolder

    dirs = {}
    for key in ("train_dir", "test_dir"):
        value = cfg.get(key)
        if not value or not Path(value).expanduser().is_dir():
            raise DatasetUnavailableError(
                f"dataset.{key}={value!r} is not a directory of <class>/<image> folders "
                f"(for the offline CIFAR-10 images run: python scripts/prepare_cifar10_jpeg.py)"
            )
        dirs[key] = str(Path(value).expanduser())
    size = cfg.image_size or 32
    # the images' own size is unknown: every image is resized to ``size``
    train = ImageFolder(
        dirs["train_dir"], transform=_transforms(cfg, size, None, True), loader=load_image
    )
    test = ImageFolder(
        dirs["test_dir"], transform=_transforms(cfg, size, None, False), loader=load_image
    )
    train_eval = (
        ImageFolder(
            dirs["train_dir"], transform=_transforms(cfg, size, None, False), loader=load_image
        )
        if cfg.augment
        else None
    )
    if train.classes != test.classes:
        raise DatasetUnavailableError(
            f"dataset.train_dir and dataset.test_dir hold different classes: "
            f"{train.classes} vs {test.classes}"
        )
    return DatasetBundle(train, test, len(train.classes), 3, size, train_eval)


# -- offline datasets -------------------------------------------------------------------
@register_dataset("digits", num_classes=10, in_channels=1)
def digits(cfg: Any, download: bool = False) -> DatasetBundle:
    """scikit-learn's bundled 8x8 grey digits (1,797 images, 10 classes): works offline.

    A fixed stratified train/test split holding out ``dataset.test_fraction`` (default 0.2;
    ``dataset.split_seed``); pixels scaled to [0, 1], resized (bilinear) to
    ``dataset.image_size`` when set, and standardised with the training set's mean and std.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    size = cfg.image_size or x.shape[-1]
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    idx_train, idx_test = train_test_split(
        range(len(y)),
        test_size=float(cfg.test_fraction),
        stratify=y.numpy(),
        random_state=cfg.split_seed,
    )
    x_train, x_test = x[idx_train], x[idx_test]
    mean, std = x_train.mean(), x_train.std()
    return DatasetBundle(
        TensorDataset((x_train - mean) / std, y[idx_train]),
        TensorDataset((x_test - mean) / std, y[idx_test]),
        num_classes=10,
        in_channels=1,
        image_size=size,
    )


@register_dataset("synthetic")
def synthetic(cfg: Any, download: bool = False) -> DatasetBundle:
    """Gaussian images around one random template per class: learnable, instant, offline."""
    g = torch.Generator().manual_seed(cfg.split_seed)
    classes, size, ch = cfg.num_classes or 10, cfg.image_size or 16, cfg.channels
    templates = torch.randn(classes, ch, size, size, generator=g)

    def make(n: int) -> TensorDataset:
        y = torch.randint(classes, (n,), generator=g)
        x = templates[y] + cfg.noise * torch.randn(n, ch, size, size, generator=g)
        return TensorDataset(x, y)

    return DatasetBundle(make(cfg.n_train), make(cfg.n_test), classes, ch, size)
