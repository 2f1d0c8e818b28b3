"""Training a found architecture from scratch: the LightningModule of the DARTS evaluation
recipe (SGD with cosine annealing, gradient clipping, drop path rising linearly over the
epochs, auxiliary loss). Its test accuracy is the final weights' (``trainer.test`` after the
last epoch); validation, when there is any, runs on a part held out of the training split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from nas.errors import ensure_finite, ensure_finite_state
from nas.retrain.network import RetrainNetwork
from nas.schedules import cosine_lr
from nas.spaces import get_space

#: what a retraining's numerics errors suggest
FIXES = "a lower retrain.lr, trainer.precision=32-true, a smaller retrain.grad_clip"


class RetrainModule(pl.LightningModule):
    """Trains ``arch`` of the space ``space`` (``{"name", "subnet"}``: the standalone network's
    sizes) on ``num_classes`` classes. ``recipe``: ``epochs``, ``lr``, ``lr_min``, ``momentum``,
    ``weight_decay``, ``grad_clip``, ``drop_path``, ``auxiliary_weight``.

    The learning rate and the drop-path rate are functions of the epoch and the current
    ``epochs``, set when training starts (after a restore) and from epoch to epoch (no
    scheduler state is checkpointed), so a retraining resumed with more epochs follows the
    longer schedules.
    ``test_step`` reports ``test/acc`` (the DARTS protocol: the last epoch's weights on the
    test split); ``validation_step`` reports ``val/acc`` on whatever validation split the data
    module gives (``retrain.val_portion`` of the training split; none by default)."""

    def __init__(
        self,
        space: Mapping[str, Any],
        arch: str,
        num_classes: int,
        in_channels: int,
        recipe: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        search_space = get_space(space["name"], **dict(space.get("subnet") or {}))
        net = search_space.build_subnet(search_space.from_str(arch), num_classes, in_channels)
        self.net = RetrainNetwork(net, num_classes, auxiliary=recipe["auxiliary_weight"] > 0)
        # no argument checks: their torch.unique waits for the device at every step
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.test_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)

    @classmethod
    def from_config(
        cls, space: Any, arch: str, num_classes: int, in_channels: int, recipe: Mapping[str, Any]
    ) -> RetrainModule:
        """The module of a run config's ``space`` (resolved to a plain mapping)."""
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(space, resolve=True) if OmegaConf.is_config(space) else space
        return cls(
            space=plain, arch=arch, num_classes=num_classes, in_channels=in_channels, recipe=recipe
        )

    @property
    def recipe(self) -> Mapping[str, Any]:
        return self.hparams["recipe"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        r = self.recipe
        # no scheduler: the rate is set by _set_lr
        return torch.optim.SGD(
            self.parameters(), lr=r["lr"], momentum=r["momentum"], weight_decay=r["weight_decay"]
        )

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        if self.recipe["grad_clip"]:
            self.clip_gradients(optimizer, self.recipe["grad_clip"], "norm")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to checkpoint non-finite weights: the last good checkpoint stays."""
        ensure_finite_state(checkpoint["state_dict"], self.current_epoch, self.global_step, FIXES)

    def _set_lr(self, epoch: int) -> None:
        """The learning rate of ``epoch`` of the current ``epochs``."""
        r = self.recipe
        lr = cosine_lr(epoch, r["epochs"], r["lr"], r["lr_min"])
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = lr

    def _set_drop_path(self) -> None:
        self.net.set_drop_path(
            self.recipe["drop_path"] * self.current_epoch / self.recipe["epochs"]
        )

    def on_train_start(self) -> None:
        """The schedules of the current epoch, after Lightning restored a checkpoint: its
        optimizer holds the rate of the epoch count it was written with, and a mid-epoch
        resume starts no epoch."""
        self._set_drop_path()
        self._set_lr(self.current_epoch)

    def on_train_epoch_start(self) -> None:
        self._set_drop_path()

    def on_train_epoch_end(self) -> None:
        self.log("train/lr", self.optimizers().optimizer.param_groups[0]["lr"], sync_dist=True)
        self._set_lr(self.current_epoch + 1)  # as a scheduler steps: callbacks see it next epoch

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + self.recipe["auxiliary_weight"] * F.cross_entropy(aux, y)
        ensure_finite(
            loss.detach(), "the retraining loss", self.current_epoch, self.global_step, FIXES
        )
        self.train_acc(logits.detach(), y)
        self.log("train/loss", loss.detach(), on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.test_acc(logits, y)
        self.log("test/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("test/acc", self.test_acc, on_epoch=True)
