"""Training a found architecture from scratch: the LightningModule of the DARTS evaluation
recipe (SGD with cosine annealing, gradient clipping, drop path rising linearly over the
epochs, auxiliary loss)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from nas.errors import ensure_finite, ensure_finite_state
from nas.retrain.network import RetrainNetwork
from nas.spaces import get_space

#: what a retraining's numerics errors suggest
FIXES = "a lower retrain.lr, trainer.precision=32-true, a smaller retrain.grad_clip"


class RetrainModule(pl.LightningModule):
    """Trains ``arch`` of the space ``space`` (``{"name", "subnet"}``: the standalone network's
    sizes) on ``num_classes`` classes. ``recipe``: ``epochs``, ``lr``, ``lr_min``, ``momentum``,
    ``weight_decay``, ``grad_clip``, ``drop_path``, ``auxiliary_weight``. Validation reports
    ``val/acc`` on the split the data module gives (the test split in the DARTS recipe)."""

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
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")

    @property
    def recipe(self) -> Mapping[str, Any]:
        return self.hparams["recipe"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        r = self.recipe
        opt = torch.optim.SGD(
            self.parameters(), lr=r["lr"], momentum=r["momentum"], weight_decay=r["weight_decay"]
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, r["epochs"], eta_min=r["lr_min"])
        return [opt], [sched]

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        if self.recipe["grad_clip"]:
            self.clip_gradients(optimizer, self.recipe["grad_clip"], "norm")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to checkpoint non-finite weights: the last good checkpoint stays."""
        ensure_finite_state(checkpoint["state_dict"], self.current_epoch, self.global_step, FIXES)

    def on_train_epoch_start(self) -> None:
        self.net.set_drop_path(
            self.recipe["drop_path"] * self.current_epoch / self.recipe["epochs"]
        )

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
