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
from nas.data.retrain import Cutout, RetrainDataModule

__all__ = [
    "Cutout",
    "DatasetBundle",
    "RetrainDataModule",
    "SearchDataModule",
    "available_datasets",
    "build_dataset",
    "dataset_shape",
    "download_dataset",
    "register_dataset",
]
