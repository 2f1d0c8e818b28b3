"""Shared fixtures: composing the real Hydra config with overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nas.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

register_configs()

# An NB201 cell using every kind of op except 'none' (proxy and one-shot tests).
NB201_MIXED = (
    "nor_conv_3x3",
    "skip_connect",
    "nor_conv_1x1",
    "skip_connect",
    "nor_conv_3x3",
    "avg_pool_3x3",
)


def tiny(*overrides: str) -> tuple[str, ...]:
    """``TINY`` then ``overrides``; a ``callbacks=`` group choice among them drops TINY's
    setting of the diagnostics callback, which that choice may not hold."""
    picked = any(o.startswith("callbacks=") for o in overrides)
    return (*(o for o in TINY if not (picked and o.startswith("callbacks."))), *overrides)


def compose_cfg(*overrides: str) -> DictConfig:
    """The config ``python train.py <overrides>`` would run with (no Hydra run dir)."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


# A search small enough for a unit test: 4-class 8x8 synthetic images, the tiny scale
# (a 3-cell C=4 DARTS supernet); only the search stages unless a test asks for more.
TINY = (
    "dataset=synthetic",
    "scale=tiny",
    "stages=[search,derive]",
    "search.epochs=1",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "callbacks.wiring_diagnostics.pictures=false",
)


def search_module(cfg: DictConfig):
    """``(SearchDataModule, SupernetModule)`` of a composed config, set up, seed 0."""
    import pytorch_lightning as pl

    from nas.data import SearchDataModule
    from nas.search import SupernetModule

    pl.seed_everything(0)
    dm = SearchDataModule(cfg.dataset)
    dm.setup()
    module = SupernetModule.from_config(cfg, dm.num_classes, dm.in_channels)
    return dm, module


def bare_trainer(train_batches: int, val_batches: int = 0):
    """A one-epoch CPU Trainer with no logger, checkpoints, progress bar or summary."""
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=train_batches,
        limit_val_batches=val_batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def image_tree(root, per_class: int = 24, size: int = 12) -> None:
    """``root/{train,test}/{a,b}/*.png``: random RGB images."""
    import numpy as np
    from PIL import Image

    g = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                pixels = g.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")


@pytest.fixture
def tiny_cfg(tmp_path: Path):
    """A tiny DARTS search config writing into ``tmp_path``; extra overrides may follow."""

    def make(*overrides: str) -> DictConfig:
        return compose_cfg(*tiny(f"paths.output_dir={tmp_path}", *overrides))

    return make


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
    """``make(*overrides)``: the directory of a tiny run (``TINY`` plus ``overrides``) made
    once per session; tests copy it (:func:`run_copy`) rather than train their own."""
    from nas.pipeline import run

    made: dict[tuple[str, ...], Path] = {}

    def make(*overrides: str) -> Path:
        if overrides not in made:
            out = tmp_path_factory.mktemp("run")
            run(compose_cfg(*tiny(f"paths.output_dir={out}", *overrides)))
            made[overrides] = out
        return made[overrides]

    return make


@pytest.fixture
def run_copy(finished_runs, tmp_path):
    """``copy(*overrides)``: a copy in ``tmp_path`` of the session's run made with
    ``overrides`` (see :func:`finished_runs`), to continue or change."""
    import shutil

    def copy(*overrides: str) -> Path:
        shutil.copytree(finished_runs(*overrides), tmp_path, dirs_exist_ok=True)
        return tmp_path

    return copy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: pytest-xdist hands tests out in this order, so the longest ones
    start early and the workers finish together instead of one waiting on the other."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
