"""Datasets (registry) and the search LightningDataModule."""

from nas.data.datamodule import SearchDataModule
from nas.data.registry import (
    DatasetBundle,
    available_datasets,
    build_dataset,
    dataset_shape,
    download_dataset,
    register_dataset,
)

__all__ = [
    "DatasetBundle",
    "SearchDataModule",
    "available_datasets",
    "build_dataset",
    "dataset_shape",
    "download_dataset",
    "register_dataset",
]
