"""A callback that SIGKILLs its own process, for the resume tests: a real ``kill -9`` at a
known training step (``+callbacks.kill._target_=tests.killer.KillAtStep +callbacks.kill.step=N``)."""

import os
import signal

import pytorch_lightning as pl


class KillAtStep(pl.Callback):
    """Kill the process when ``trainer.global_step`` first reaches ``step`` (before that step's
    checkpoint: Lightning runs checkpoint callbacks last)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
