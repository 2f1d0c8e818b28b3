"""Callbacks the end-to-end tests inject into a real ``train.py`` from the command line
(``+callbacks.<name>._target_=tests.callbacks.<Class>``)."""

import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch


class KillAtStep(pl.Callback):
    """SIGKILL the process when ``trainer.global_step`` first reaches ``step`` (before that
    step's checkpoint: Lightning runs checkpoint callbacks last): a real ``kill -9``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class DumpStrategyState(pl.Callback):
    """At the end of each fit, every rank writes its strategy's state (alphas and sampling
    generator) to ``<dir>/<training>_rank<r>.pt`` (``<training>``: the name of the trainer's
    root directory, e.g. the run's or ``finetune``), so a test can compare the ranks."""

    def __init__(self, dir: str) -> None:
        self.dir = Path(dir)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not hasattr(pl_module, "strategy"):  # a retraining has none
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        torch.save(
            pl_module.strategy.state_dict(),
            self.dir / f"{Path(trainer.default_root_dir).name}_rank{trainer.global_rank}.pt",
        )
