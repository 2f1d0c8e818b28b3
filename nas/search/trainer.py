"""Builds the Lightning ``Trainer``, its callbacks and loggers from the config.

``cfg.trainer``, every ``cfg.callbacks.<name>`` and every ``cfg.logger.<name>`` carry a
``_target_`` and are built by ``hydra.utils.instantiate`` (as in lightning-hydra-template), so
any Trainer flag, callback or logger can be set from the command line. The pipeline adds the
callbacks it depends on (``ArchitectureWriter`` in the search).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger, WandbLogger

from nas.files import CHECKPOINT_DIR
from nas.search.checkpoints import AtomicCheckpointIO, RandomState

__all__ = [
    "CHECKPOINT_DIR",
    "build_callbacks",
    "build_loggers",
    "build_trainer",
    "trains_on_cuda",
    "wandb_logger",
]


def trains_on_cuda(cfg: Any) -> bool:
    """Whether the configured Trainer trains on CUDA: ``trainer.accelerator`` is ``gpu`` or
    ``cuda``, or ``auto`` on a machine with a CUDA device."""
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def wandb_mode(configured: str | None) -> str:
    """``configured`` if set; else ``WANDB_MODE``; else online with ``WANDB_API_KEY``, offline without."""
    if configured:
        return configured
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def wandb_logger(mode: str | None = None, **kwargs: Any) -> WandbLogger:
    """A ``WandbLogger`` that runs offline unless a key or ``mode`` says otherwise."""
    mode = wandb_mode(mode)
    return WandbLogger(offline=mode == "offline", mode=mode, **kwargs)


def build_loggers(cfg: Any, save_dir: Path | None = None) -> list[Logger]:
    """The loggers of ``cfg.logger`` (``{name: {_target_: ...}}``; empty: none), writing into
    ``save_dir`` when given instead of their configured directory."""
    where = {"save_dir": str(save_dir)} if save_dir is not None else {}
    return [instantiate(node, **where) for node in (cfg.logger or {}).values()]


def build_callbacks(cfg: Any, checkpoint_dir: Path | None = None) -> list[pl.Callback]:
    """The callbacks of ``cfg.callbacks`` (``{name: {_target_: ...}}``); checkpoints go to
    ``checkpoint_dir`` when given."""
    callbacks = [instantiate(node) for node in (cfg.callbacks or {}).values()]
    for cb in callbacks:
        if checkpoint_dir is not None and isinstance(cb, ModelCheckpoint):
            cb.dirpath = str(checkpoint_dir)
    return callbacks


def build_trainer(
    cfg: Any,
    run_dir: Path,
    extra_callbacks: Sequence[pl.Callback] = (),
    *,
    subdir: str | None = None,
    max_epochs: int | None = None,
) -> pl.Trainer:
    """The configured Trainer with ``extra_callbacks`` added, the global random state kept in
    its checkpoints and the checkpoints written atomically (unless ``trainer.plugins`` names
    other plugins). With ``subdir`` (a later stage's
    training, e.g. ``retrain``), its checkpoints, logs and root live in ``run_dir/subdir`` and
    it trains ``max_epochs`` epochs."""
    root = run_dir / subdir if subdir else None
    callbacks = [
        *build_callbacks(cfg, root / CHECKPOINT_DIR if root else None),
        *extra_callbacks,
        RandomState(),
    ]
    loggers = build_loggers(cfg, root)
    overrides: dict[str, Any] = {"default_root_dir": str(root)} if root else {}
    if max_epochs is not None:
        overrides["max_epochs"] = max_epochs
    if not cfg.trainer.get("plugins"):
        overrides["plugins"] = [AtomicCheckpointIO()]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **overrides)
