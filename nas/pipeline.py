"""The search pipeline: stages that read and write named files of one run directory.

Implemented stages: ``search`` (train the supernet, ``supernet.ckpt``) and ``derive``
(``derived.json`` with ``"final": true``). Each stage is skipped when its output exists and
``resume`` is true; an interrupted search continues from ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from nas.config import check_config
from nas.data import SearchDataModule
from nas.errors import ConfigError
from nas.io import read_json, write_json_atomic
from nas.search import CHECKPOINT_DIR, DERIVED_FILE, SupernetModule, build_space, build_trainer
from nas.spaces import SearchSpace

log = logging.getLogger(__name__)

SUPERNET_FILE = "supernet.ckpt"


@dataclass
class RunResult:
    run_dir: Path
    space: str
    arch: str
    epoch: int


def search_stage(cfg: DictConfig, run_dir: Path) -> bool:
    """Train the supernet and strategy; writes ``checkpoints/``, ``derived.json``, ``supernet.ckpt``.

    Returns whether this process is the global rank zero (the one that runs later stages).
    """
    datamodule = SearchDataModule(cfg.dataset)  # Lightning runs prepare_data, then setup
    module = SupernetModule(
        space=OmegaConf.to_container(cfg.space, resolve=True),
        search=OmegaConf.to_container(cfg.search, resolve=True),
        num_classes=datamodule.num_classes,
        in_channels=datamodule.in_channels,
    )
    trainer = build_trainer(cfg, run_dir)
    last = run_dir / CHECKPOINT_DIR / "last.ckpt"
    ckpt_path = str(last) if cfg.resume and last.exists() else None
    if ckpt_path:
        log.info("resuming the search from %s", ckpt_path)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    if trainer.interrupted:
        raise KeyboardInterrupt("search interrupted; rerun with the same hydra.run.dir to resume")
    # every rank calls save_checkpoint (it synchronises them); rank zero writes the file
    trainer.save_checkpoint(run_dir / SUPERNET_FILE, weights_only=False)
    return trainer.is_global_zero


def derive_stage(run_dir: Path, space: SearchSpace) -> RunResult:
    """Mark the last epoch's derived architecture final (validating it against the space)."""
    derived = read_json(run_dir / DERIVED_FILE)
    arch = space.from_json(derived)
    write_json_atomic(
        run_dir / DERIVED_FILE, {**space.to_json(arch), "epoch": derived["epoch"], "final": True}
    )
    return RunResult(run_dir, space.name, space.to_str(arch), int(derived["epoch"]))


def _done(run_dir: Path) -> bool:
    derived = run_dir / DERIVED_FILE
    return (
        (run_dir / SUPERNET_FILE).exists()
        and derived.exists()
        and read_json(derived).get("final", False)
    )


def run(cfg: DictConfig) -> RunResult | None:
    """Run every stage of one search in ``cfg.paths.output_dir``.

    Returns the result on the process that ran the later stages; ``None`` on the other ranks
    of a multi-process (DDP) search, which only train.
    """
    check_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.resume and any(
        (run_dir / f).exists() for f in (DERIVED_FILE, SUPERNET_FILE, CHECKPOINT_DIR)
    ):
        raise ConfigError(
            f"run directory {run_dir} already holds results and resume=false; set resume=true "
            f"to continue it or choose a new hydra.run.dir"
        )
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    space = build_space(cfg.space)
    if cfg.resume and _done(run_dir):
        log.info("search stage already done in %s; skipping", run_dir)
    elif not search_stage(cfg, run_dir):
        return None
    return derive_stage(run_dir, space)
