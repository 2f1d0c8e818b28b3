"""Builds the Lightning ``Trainer``, its callbacks and loggers from the config.

``cfg.trainer``, every ``cfg.callbacks.<name>`` and every ``cfg.logger.<name>`` carry a
``_target_`` and are built by ``hydra.utils.instantiate`` (as in lightning-hydra-template), so
any Trainer flag, callback or logger can be set from the command line. The pipeline adds the
callbacks it depends on (:class:`~nas.search.callbacks.ArchitectureWriter`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from pytorch_lightning.loggers import Logger, WandbLogger

from nas.files import CHECKPOINT_DIR
from nas.search.callbacks import ArchitectureWriter

__all__ = ["CHECKPOINT_DIR", "build_callbacks", "build_loggers", "build_trainer", "wandb_logger"]


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


def build_loggers(cfg: Any) -> list[Logger]:
    """The loggers of ``cfg.logger`` (``{name: {_target_: ...}}``; empty: none)."""
    return [instantiate(node) for node in (cfg.logger or {}).values()]


def build_callbacks(cfg: Any) -> list[pl.Callback]:
    """The callbacks of ``cfg.callbacks`` (``{name: {_target_: ...}}``)."""
    return [instantiate(node) for node in (cfg.callbacks or {}).values()]


def build_trainer(cfg: Any, run_dir: Path, extra_callbacks: list[pl.Callback] = ()) -> pl.Trainer:
    """The configured Trainer; ``ArchitectureWriter(run_dir)`` and ``extra_callbacks`` are added."""
    callbacks = [*build_callbacks(cfg), ArchitectureWriter(run_dir), *extra_callbacks]
    loggers = build_loggers(cfg)
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
