"""Schedules follow the current epoch count: a search or retraining resumed with more epochs
anneals its learning rate (and GDAS its temperature) over the new count, from where it stands,
whether it resumes at an epoch's end or in the middle of one."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch

from nas.files import SUPERNET_FILE
from nas.pipeline import run

W_LR, W_LR_MIN = 0.025, 0.001  # conf/search/darts.yaml and gdas.yaml


def cosine(epoch: int, epochs: int, lr: float = W_LR, lr_min: float = W_LR_MIN) -> float:
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


class RecordSchedules(pl.Callback):
    """Records ``(epoch, learning rate, GDAS temperature or None)`` before every training batch:
    the rate its weight step uses. Class-level, since Hydra builds the instance."""

    seen: ClassVar[list[tuple[int, float, float | None]]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, *args: object) -> None:
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        tau = getattr(getattr(pl_module, "strategy", None), "tau", None)
        self.seen.append((trainer.current_epoch, lr, tau))


class Crash(RuntimeError):
    pass


class CrashAtStep(pl.Callback):
    """Raises when ``trainer.global_step`` first reaches ``step`` (before that step's checkpoint:
    Lightning runs checkpoint callbacks last)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            raise Crash(f"step {trainer.global_step}")


RECORD = "+callbacks.record._target_=tests.test_schedules.RecordSchedules"
# checkpoints only (no diagnostics' pictures), one batch an epoch
QUICK = ("callbacks=checkpoints", "trainer.limit_train_batches=1", RECORD)


@contextmanager
def recorded() -> Iterator[list[tuple[int, float, float | None]]]:
    RecordSchedules.seen = []
    try:
        yield RecordSchedules.seen
    finally:
        RecordSchedules.seen = []


def per_epoch(seen: list[tuple[int, float, float | None]]) -> dict[int, set[float]]:
    lrs: dict[int, set[float]] = {}
    for epoch, lr, _ in seen:
        lrs.setdefault(epoch, set()).add(lr)
    return lrs


def test_search_resumed_with_more_epochs_anneals_over_the_new_count(tiny_cfg, tmp_path):
    """2 epochs, then resumed to 4: epochs 2 and 3 train at the 4-epoch cosine's rates (the
    old scheduler's T_max=2 put epoch 2 at the minimum and climbed back up at epoch 3)."""
    with recorded() as seen:
        run(tiny_cfg("search.epochs=2", *QUICK))
        (tmp_path / SUPERNET_FILE).unlink()  # the search stage is done: make it continue
        result = run(tiny_cfg("search.epochs=4", *QUICK))
    assert result.derived["epoch"] == 3
    lrs = per_epoch(seen)
    assert sorted(lrs) == [0, 1, 2, 3]
    assert all(len(rates) == 1 for rates in lrs.values())  # one rate an epoch
    rates = [lrs[e].pop() for e in range(4)]
    assert rates[:2] == pytest.approx([cosine(0, 2), cosine(1, 2)])  # the first run's count
    assert rates[2:] == pytest.approx([cosine(2, 4), cosine(3, 4)])  # the new count
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(rates))


def test_search_resumed_mid_epoch_with_more_epochs_follows_the_new_schedules(tiny_cfg):
    """A GDAS search crashed in its second epoch (of 2), resumed with 4: the rest of that
    epoch trains at the 4-epoch cosine's rate and temperature, not at the restored
    optimizer's rate or a temperature of epoch 0."""
    # 3 batches an epoch, two optimizer steps each (weights, alphas): the crash at step 10
    # (after epoch 1's second batch) leaves the checkpoint of step 8 (after its first)
    common = (
        "search=gdas",
        "checkpoint_every_n_steps=2",
        "callbacks=checkpoints",
        "trainer.limit_train_batches=3",
        RECORD,
    )
    crash = (
        "+callbacks.crash._target_=tests.test_schedules.CrashAtStep",
        "+callbacks.crash.step=10",
    )
    with recorded() as seen:
        with pytest.raises(Crash):
            run(tiny_cfg("search.epochs=2", *common, *crash))
        del seen[:]
        run(tiny_cfg("search.epochs=4", *common))
    tau_max, tau_min = 10.0, 0.1  # conf/search/gdas.yaml
    epochs = [e for e, _, _ in seen]
    assert epochs == [1, 1, 2, 2, 2, 3, 3, 3]  # epoch 1's last 2 batches, then 2 more epochs
    for epoch, lr, tau in seen:
        assert lr == pytest.approx(cosine(epoch, 4)), epoch
        assert tau == pytest.approx(tau_max - (tau_max - tau_min) * epoch / 3), epoch


def _retrain(tmp_path, epochs: int, ckpt_path: str | None) -> pl.LightningModule:
    """A tiny retraining of a fixed DARTS arch for ``epochs`` epochs (resumed from
    ``ckpt_path``), recording the rate of every batch."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    from nas.data import RetrainDataModule
    from nas.retrain import RetrainModule
    from nas.spaces import get_space
    from tests.conftest import compose_cfg

    cfg = compose_cfg("dataset=synthetic", "scale=tiny")
    recipe = {
        "epochs": epochs,
        "lr": 0.05,
        "lr_min": 0.0,
        "momentum": 0.9,
        "weight_decay": 3e-4,
        "grad_clip": 5.0,
        "drop_path": 0.2,
        "auxiliary_weight": 0.4,
    }
    space = get_space("darts")
    arch = space.to_str(space.sample(random.Random(0)))
    pl.seed_everything(0)
    data = RetrainDataModule(cfg.dataset, batch_size=32, cutout=0)
    module = RetrainModule.from_config(cfg.space, arch, data.num_classes, data.in_channels, recipe)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_val_batches=0,
        logger=False,
        callbacks=[
            ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0),
            RecordSchedules(),
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    return module


def test_retrain_resumed_with_more_epochs_anneals_over_the_new_count(tmp_path):
    """A retraining of 2 epochs resumed to 4 trains epochs 2 and 3 at the 4-epoch cosine's
    rates and raises drop path over the 4 epochs."""
    torch.set_num_threads(1)
    with recorded() as seen:
        _retrain(tmp_path, 2, None)
        module = _retrain(tmp_path, 4, str(tmp_path / "last.ckpt"))
    lrs = per_epoch(seen)
    assert sorted(lrs) == [0, 1, 2, 3] and all(len(r) == 1 for r in lrs.values())
    rates = [lrs[e].pop() for e in range(4)]
    assert rates[:2] == pytest.approx([cosine(0, 2, 0.05, 0.0), cosine(1, 2, 0.05, 0.0)])
    assert rates[2:] == pytest.approx([cosine(2, 4, 0.05, 0.0), cosine(3, 4, 0.05, 0.0)])
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(rates))
    assert module.net.drop_paths[0].drop_prob == pytest.approx(0.2 * 3 / 4)
