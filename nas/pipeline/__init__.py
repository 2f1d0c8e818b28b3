"""The stages of one run and the files through which they meet (DESIGN.md, "The flow").

``search`` trains the supernet (``checkpoints/``, ``alphas.jsonl``, ``derived.json``,
``supernet.ckpt``); ``derive`` marks the derived arch final; ``finetune`` trains the supernet's
single paths (``finetuned.ckpt``), so that one-shot scores rate trained paths; ``split``
divides it into sub-supernets (``splits.json``); ``sample`` scores K subnets (``archive.jsonl``);
``evolve`` searches from the archive with the predictor-guided refiner (``archive.jsonl``,
``predictor.pt``); ``shortlist`` trains the best-scored archs briefly (``shortlist.json``);
``export`` writes the final model and report (``final.json``, ``subnet.pt``,
``subnet.onnx``, ``summary.md``, ``plots/``); ``retrain`` trains the final arch from scratch
(``retrain.json``). ``stages`` picks which run.

Each stage declares the config keys and the earlier stages' outputs it depends on; after it
ran, ``stages.json`` records their values (:mod:`nas.pipeline.records`). A stage is skipped
when its outputs are whole and were made with today's values, so rerunning a killed run's
command continues where it stopped. When they were made with other values, the stage is
redone, and so is every stage after it that reads its outputs: a training stage whose only
change is a larger epoch count continues from its checkpoint; otherwise its old files are
moved to ``stale/`` and it starts over. Archived scores are reused only when the same
supernet and scorer settings made them (each record names its producer).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from nas.config import check_config
from nas.errors import ConfigError
from nas.files import (
    ALPHAS_FILE,
    ARCHIVE_FILE,
    CHECKPOINT_DIR,
    DERIVED_FILE,
    FINAL_FILE,
    FINETUNE_DIR,
    FINETUNED_FILE,
    PREDICTOR_FILE,
    PRUNED_FILE,
    RETRAIN_DIR,
    RETRAIN_FILE,
    SHORTLIST_FILE,
    SPLIT_DIR,
    SPLITS_FILE,
    SUPERNET_FILE,
    WIRING_DIR,
    WIRING_FILE,
)
from nas.io import read_json
from nas.pipeline import scoring, training
from nas.pipeline.records import Fingerprint, changed_keys, only_grown, set_aside, settings
from nas.pipeline.state import SCORER_INPUTS, SCORER_KEYS, Run

__all__ = ["STAGES", "SUPERNET_FILE", "Run", "RunResult", "Stage", "run"]

log = logging.getLogger(__name__)

#: the dataset settings that change what a training sees (not where the files lie, nor how
#: many workers load them)
DATA_KEYS = tuple(
    f"dataset.{k}"
    for k in (
        "name",
        "batch_size",
        "train_portion",
        "limit_train",
        "split_seed",
        "augment",
        "crop_padding",
        "test_fraction",
        "image_size",
        "mean",
        "std",
        "num_classes",
        "channels",
        "n_train",
        "n_test",
        "noise",
    )
)
TRAINING_KEYS = ("seed", "space", "trainer.precision", *DATA_KEYS)


@dataclass(frozen=True)
class Stage:
    """One stage: its ``work``, whether its outputs are whole (``complete``), the config
    ``keys`` and earlier stages (``reads``) its outputs depend on, whether every DDP rank
    joins it (``trains``), the keys a resume may grow (``extendable``) and the files it owns
    (``files``: moved to ``stale/`` when it starts over)."""

    name: str
    work: Callable[[Run], None]
    complete: Callable[[Run], bool]
    keys: tuple[str, ...]
    reads: tuple[str, ...] = ()
    trains: bool = False
    extendable: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    #: whether the config asks for any work of it (no fine-tune of 0 epochs, no split
    #: without a method)
    applies: Callable[[Run], bool] = lambda run: True

    def fingerprint(self, run: Run) -> Fingerprint:
        """Today's values of what the stage's outputs depend on."""
        return {
            "settings": settings(run.cfg, self.keys),
            "inputs": {s: run.records.digest_of(s) for s in self.reads},
        }


def _sampled(run: Run) -> int:
    return len(run.scored_entries(scoring.SAMPLE_STAGE))


STAGES: tuple[Stage, ...] = (
    Stage(
        "search",
        training.search,
        lambda r: r.path(SUPERNET_FILE).exists() and r.path(DERIVED_FILE).exists(),
        ("search", *TRAINING_KEYS),
        trains=True,
        extendable=("search.epochs",),
        applies=lambda r: not r.training_free,
        files=(
            CHECKPOINT_DIR,
            SUPERNET_FILE,
            DERIVED_FILE,
            ALPHAS_FILE,
            WIRING_FILE,
            WIRING_DIR,
            "metrics.csv",
            "hparams.yaml",
        ),
    ),
    Stage(
        "derive",
        scoring.derive,
        lambda r: r.path(DERIVED_FILE).exists() and read_json(r.path(DERIVED_FILE))["final"],
        (),
        reads=("search",),
        applies=lambda r: not r.training_free,
    ),
    Stage(
        "finetune",
        training.finetune,
        lambda r: r.path(FINETUNED_FILE).exists(),
        ("finetune", "oneshot.batch_size", *TRAINING_KEYS),
        reads=("search",),
        trains=True,
        extendable=("finetune.epochs",),
        files=(FINETUNE_DIR, FINETUNED_FILE, PRUNED_FILE),
        applies=lambda r: r.cfg.finetune.epochs > 0 and not r.training_free,
    ),
    Stage(
        "split",
        training.split,
        lambda r: r.path(SPLITS_FILE).exists() and read_json(r.path(SPLITS_FILE))["done"],
        ("split", "finetune", "oneshot.batch_size", *TRAINING_KEYS),
        reads=("search", "finetune"),
        files=(SPLIT_DIR, SPLITS_FILE),
        applies=lambda r: r.cfg.split.method is not None and not r.training_free,
    ),
    Stage(
        "sample",
        scoring.sample,
        lambda r: _sampled(r) >= r.cfg.sample.size,
        ("sample", "prescreen", "constraints", "latency", "space.subnet", *SCORER_KEYS),
        reads=("derive", *SCORER_INPUTS),
    ),
    Stage(
        "evolve",
        scoring.evolve,
        lambda r: (
            (r.path(PREDICTOR_FILE).exists() or r.cfg.evolution.algorithm != "refine")
            and len(r.scored_entries()) >= _sampled(r) + r.cfg.evolution.budget
        ),
        (
            "evolution",
            "predictor",
            "prescreen",
            "constraints",
            "objectives",
            "latency",
            "space.subnet",
        ),
        reads=("sample",),
        files=(PREDICTOR_FILE,),
    ),
    Stage(
        "shortlist",
        scoring.shortlist,
        lambda r: r.path(SHORTLIST_FILE).exists() and read_json(r.path(SHORTLIST_FILE))["done"],
        ("shortlist", "constraints", "latency", "export.choice", *TRAINING_KEYS),
        reads=("evolve", "sample"),
        files=(SHORTLIST_FILE,),
        applies=scoring.shortlist_applies,
    ),
    Stage(
        "export",
        scoring.export,
        lambda r: r.path(FINAL_FILE).exists(),
        ("export", "constraints", "objectives", "latency", "space.subnet", "shortlist.size"),
        reads=("evolve", "sample", "shortlist"),
    ),
    Stage(
        "retrain",
        training.retrain,
        lambda r: r.path(RETRAIN_FILE).exists(),
        ("retrain", "arch", *TRAINING_KEYS),
        reads=("export",),
        trains=True,
        extendable=("retrain.epochs",),
        files=(RETRAIN_DIR, RETRAIN_FILE),
    ),
)
_BY_NAME = {s.name: s for s in STAGES}


@dataclass
class RunResult:
    """What a run's files say at its end (``None``: that stage's file is absent)."""

    run_dir: Path
    space: str
    derived: dict[str, Any] | None = None  # derived.json
    final: dict[str, Any] | None = None  # final.json
    retrain: dict[str, Any] | None = None  # retrain.json

    @property
    def arch(self) -> str | None:
        """The final arch when export ran, else the derived one."""
        for record in (self.final, self.derived, self.retrain):
            if record is not None and record["arch"] is not None:
                return record["arch"]
        return None


def finish_wandb() -> None:
    """Close the W&B run the stages logged to, if one is open, and shut the W&B service down,
    so that its files are whole when the pipeline returns: ``finish`` alone returned before
    the service had written an offline run's record log under load."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
        wandb.teardown()


def wait_for_rank_zero(run: Run, stages: list[Stage], poll: float = 2.0) -> None:
    """Block a DDP rank other than zero until rank zero has finished ``stages`` (their records
    hold today's fingerprints), before a training stage that reads their files."""
    for stage in (s for s in stages if s.applies(run)):
        if run.records.get(stage.name) != stage.fingerprint(run):
            log.info("rank %d waits for rank zero's %s stage", run.rank, stage.name)
        while run.records.get(stage.name) != stage.fingerprint(run):
            time.sleep(poll)


def run_stage(run: Run, stage: Stage) -> None:
    """Run ``stage`` unless its outputs are whole and made with today's settings; record them."""
    if not stage.applies(run):
        return
    wanted, recorded = stage.fingerprint(run), run.records.get(stage.name)
    if run.cfg.resume and recorded == wanted and stage.complete(run):
        log.info("%s stage already done in %s; skipping", stage.name, run.dir)
        return
    if recorded is not None and recorded != wanted:
        changed = ", ".join(changed_keys(recorded, wanted))
        if only_grown(recorded, wanted, stage.extendable):
            log.warning("%s stage: %s grew; continuing from its checkpoint", stage.name, changed)
        else:
            moved = set_aside(run.dir, stage.name, stage.files) if run.rank_zero else None
            log.warning(
                "%s stage: its outputs were made with other values of %s; redoing it and the "
                "stages that read it%s",
                stage.name,
                changed,
                f" (its old files are in {moved})" if moved else "",
            )
    log.info("%s stage", stage.name)
    stage.work(run)
    if run.rank_zero:
        run.records.put(stage.name, wanted)


def run(cfg: DictConfig) -> RunResult | None:
    """Run the configured stages of one search in ``cfg.paths.output_dir``.

    Returns the result on the process that ran the later stages; ``None`` on the other ranks
    of a multi-process (DDP) search, which only train.
    """
    check_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.resume and any(
        (run_dir / f).exists() for f in (DERIVED_FILE, SUPERNET_FILE, CHECKPOINT_DIR, ARCHIVE_FILE)
    ):
        raise ConfigError(
            f"run directory {run_dir} already holds results and resume=false; set resume=true "
            f"to continue it or choose a new hydra.run.dir"
        )
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    state = Run(cfg)
    if state.rank_zero and any(s in cfg.stages for s in ("sample", "evolve", "export")):
        state.check_constraints()  # a budget no arch meets: before any stage moves files
    skipped: list[Stage] = []  # rank-zero-only stages the other ranks have not waited for
    try:
        for name in cfg.stages:
            stage = _BY_NAME[name]
            if not state.rank_zero:
                if not stage.trains:
                    skipped.append(stage)
                    continue
                wait_for_rank_zero(state, skipped)
                skipped = []
            run_stage(state, stage)
    finally:
        finish_wandb()
    if not state.rank_zero:
        return None
    files = {}
    for key, name in (("derived", DERIVED_FILE), ("final", FINAL_FILE), ("retrain", RETRAIN_FILE)):
        path = state.path(name)
        files[key] = read_json(path) if path.exists() else None
    return RunResult(run_dir, state.space.name, **files)
