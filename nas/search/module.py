"""``SupernetModule``: the LightningModule of a one-shot search (bi-level, manual optimisation).

Each training step takes ``{"train": (x, y), "arch": (x, y)}`` from the two halves of the
training set: first an architecture step on the ``arch`` half (when the strategy has one and
``search.arch_warmup_epochs`` are over), then a weight step on the ``train`` half with
gradient-norm clipping (the gradients of every path the strategy trains this step summed).
Validation scores the supernet on the ``arch`` half with the strategy's evaluation weights.

With ``search.cuda_graph`` (CUDA, strategies whose steps stay the same:
``Strategy.graph_safe``), the arch step's forward and backward, the weight step's and the
validation forward are each replayed as a CUDA graph after three eager warm-up calls
(:mod:`nas.search.cuda_graphs`); the optimisers, the clip and the checks stay eager, through
Lightning, so its step count, hooks and schedules are those of the eager step.

The module builds its space, supernet and strategy from its (saved) hyperparameters, so
``SupernetModule.load_from_checkpoint(path, weights_only=True)`` restores a search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from nas.errors import ConfigError, ensure_finite, ensure_finite_state
from nas.schedules import cosine_lr
from nas.search.cuda_graphs import GraphedCalls
from nas.search.parts import build_search_supernet, build_space
from nas.search.strategies import build_strategy
from nas.search.trainer import trains_on_cuda
from nas.supernet import resolve_backend

#: what a search's numerics errors suggest
NUMERICS_FIXES = (
    "a lower search.w_lr or search.arch_lr, trainer.precision=32-true (no fp16/bf16 overflow), "
    "a smaller search.grad_clip"
)

#: the strategies whose steps ``search.cuda_graph`` captures (``Strategy.graph_safe``)
GRAPH_SAFE = ("darts", "betadarts", "fairdarts", "pcdarts")


class SupernetModule(pl.LightningModule):
    """Trains the supernet's weights (SGD, cosine) and the strategy's parameters (Adam).

    Every schedule (the weights' learning rate, the strategy's temperature or ramp) is a
    function of the epoch and the current ``search.epochs``, set when training starts (after
    a restore) and from epoch to epoch; no scheduler state is checkpointed, so a run resumed
    with more epochs follows the longer schedules from where it stands.

    Args:
        space: the ``space`` config (``name``, ``subnet``, ``supernet``) as a plain mapping.
        search: the ``search`` config (``strategy``, ``epochs``, ``w_lr``, ``w_lr_min``,
            ``w_momentum``, ``w_weight_decay``, ``grad_clip``, ``arch_lr``, ``arch_betas``,
            ``arch_weight_decay`` and the strategy's own keys).
        num_classes, in_channels: the dataset's.
    """

    def __init__(
        self,
        space: Mapping[str, Any],
        search: Mapping[str, Any],
        num_classes: int,
        in_channels: int,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        search_space = build_space(space)
        self.supernet = build_search_supernet(
            search_space, space.get("supernet") or {}, num_classes, in_channels
        )
        self.strategy = build_strategy(search_space, search, self.supernet)
        # no argument checks: their torch.unique waits for the device at every step
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self._graphs: GraphedCalls | None = None  # set when training starts on CUDA
        if search.get("cuda_graph") and not self.strategy.graph_safe:
            raise ConfigError(
                f"search.cuda_graph=true cannot capture search.strategy={search['strategy']!r}: "
                f"its steps differ from step to step (it can: {', '.join(GRAPH_SAFE)})"
            )

    @classmethod
    def from_config(cls, cfg: Any, num_classes: int, in_channels: int) -> SupernetModule:
        """The module of a run config's ``space`` and ``search`` (resolved to plain mappings);
        the run's ``seed`` seeds the strategy's own draws (single paths). A
        ``space.supernet.backend`` of ``auto`` is made concrete for ``trainer.accelerator``, so
        the checkpoint names the backend the search ran with."""
        from omegaconf import OmegaConf

        space = OmegaConf.to_container(cfg.space, resolve=True)
        supernet = space.get("supernet") or {}
        try:
            backend = resolve_backend(str(supernet.get("backend", "auto")), trains_on_cuda(cfg))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        space["supernet"] = {**supernet, "backend": backend}
        if cfg.search.get("cuda_graph"):
            if not trains_on_cuda(cfg):
                raise ConfigError(
                    "search.cuda_graph=true needs trainer.accelerator on CUDA (trainer=gpu)"
                )
            if supernet.get("compile") not in (None, False, "none"):
                raise ConfigError(
                    "search.cuda_graph=true captures the step itself: set space.supernet.compile=false "
                    f"(it is {supernet.get('compile')!r})"
                )
        return cls(
            space=space,
            search={**OmegaConf.to_container(cfg.search, resolve=True), "seed": cfg.seed},
            num_classes=num_classes,
            in_channels=in_channels,
        )

    @property
    def search_hparams(self) -> Mapping[str, Any]:
        return self.hparams["search"]

    def configure_optimizers(self):
        """``([SGD on the weights, Adam on the strategy's parameters if any], [])``: no
        scheduler, the weights' rate is set by :meth:`_set_lr`."""
        hp = self.search_hparams
        w_opt = torch.optim.SGD(
            self.supernet.parameters(),
            lr=hp["w_lr"],
            momentum=hp["w_momentum"],
            weight_decay=hp["w_weight_decay"],
        )
        arch_params = self.strategy.arch_parameters()
        if not arch_params:
            return [w_opt], []
        a_opt = torch.optim.Adam(
            arch_params,
            lr=hp["arch_lr"],
            betas=tuple(hp["arch_betas"]),
            weight_decay=hp["arch_weight_decay"],
        )
        return [w_opt, a_opt], []

    def _optimizers(self) -> tuple[Any, Any | None]:
        opts = self.optimizers()
        return (opts[0], opts[1]) if isinstance(opts, list) else (opts, None)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        (x, y), (xa, ya) = batch["train"], batch["arch"]
        w_opt, a_opt = self._optimizers()

        if a_opt is not None and self.current_epoch >= self.search_hparams.get(
            "arch_warmup_epochs", 0
        ):
            self._zero_grad(a_opt)
            arch_backward = partial(self._arch_backward, w_opt=w_opt.optimizer)
            (arch_loss,) = self._call("arch", arch_backward, x, y, xa, ya)
            if arch_loss is not None:
                self._ensure_finite(arch_loss, "the architecture loss")
                a_opt.step()
                for alpha in self.strategy.arch_parameters():
                    self._ensure_finite(alpha.detach(), "an architecture parameter")
                self.log("train/arch_loss", arch_loss.clone(), on_epoch=True, sync_dist=True)

        self._zero_grad(w_opt)
        loss, logits = self._call("weights", self._weights_backward, x, y)
        loss = loss.clone()  # a graph's output is overwritten by its next replay
        self._ensure_finite(loss, "the training loss")
        w_opt.step()  # clipping happens in on_before_optimizer_step, on unscaled gradients

        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _arch_backward(
        self, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor, w_opt: Any
    ) -> tuple[torch.Tensor | None]:
        """The strategy's architecture gradient into the alphas' ``.grad``; ``(its loss,)``."""
        loss = self.strategy.arch_backward(
            self.supernet, (x, y), (xa, ya), self.manual_backward, w_opt
        )
        return (None if loss is None else loss.detach(),)

    def _weights_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The gradient of every training path's loss summed into the weights' ``.grad``;
        ``(the paths' mean loss, the first path's logits)``. With in-place distillation the
        paths after the first learn the first path's predicted distribution."""
        losses, logits = [], None
        for weights in self.strategy.train_paths():
            path_logits = self.supernet(x, weights, self.strategy.active_ops())
            teacher = logits is not None and self.strategy.distills  # in-place distillation
            loss = F.cross_entropy(path_logits, logits.softmax(dim=1) if teacher else y)
            self.manual_backward(loss)
            losses.append(loss.detach())
            logits = path_logits.detach() if logits is None else logits
        return torch.stack(losses).mean(), logits

    def on_validation_model_zero_grad(self) -> None:
        """Lightning frees the gradients before validating; under CUDA graphs they are zeroed
        in place instead (the graphs write into them where they stand)."""
        self.zero_grad(set_to_none=self._graphs is None)

    def _eval_logits(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.supernet(x, self.strategy.eval_weights(), self.strategy.active_ops()),)

    def _call(self, name: str, fn: Callable[..., tuple], *tensors: torch.Tensor) -> tuple:
        """``fn(*tensors)``, replayed as a CUDA graph under ``search.cuda_graph``."""
        return fn(*tensors) if self._graphs is None else self._graphs(name, fn, *tensors)

    def _zero_grad(self, optimizer) -> None:
        """Zero the gradients; under CUDA graphs in place (a captured backward accumulates
        into the ``.grad`` tensors it saw)."""
        optimizer.zero_grad(set_to_none=self._graphs is None)

    def _ensure_finite(self, value: torch.Tensor, what: str) -> None:
        ensure_finite(value, what, self.current_epoch, self.global_step, NUMERICS_FIXES)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to checkpoint non-finite weights or alphas: the last good one stays."""
        ensure_finite_state(
            checkpoint["state_dict"], self.current_epoch, self.global_step, NUMERICS_FIXES
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the weight gradients' norm to ``grad_clip``.

        Lightning calls this hook inside ``optimizer.step()``, after a mixed-precision grad
        scaler has unscaled the gradients, so the clip sees their true size.
        """
        if optimizer is self._optimizers()[0].optimizer and self.search_hparams["grad_clip"]:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.search_hparams["grad_clip"],
                gradient_clip_algorithm="norm",
            )

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        (logits,) = self._call("val", self._eval_logits, x)
        self.val_acc(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def _set_lr(self, epoch: int) -> None:
        """The weights' learning rate of ``epoch`` of the current ``search.epochs``."""
        hp = self.search_hparams
        lr = cosine_lr(epoch, hp["epochs"], hp["w_lr"], hp["w_lr_min"])
        for group in self._optimizers()[0].optimizer.param_groups:
            group["lr"] = lr

    def on_train_start(self) -> None:
        """The schedules of the current epoch, after Lightning restored a checkpoint: its
        optimizer holds the rate of the epoch count it was written with, and a mid-epoch
        resume starts no epoch. Under ``search.cuda_graph``, the graphs' bookkeeping."""
        self.strategy.set_epoch(self.current_epoch, self.search_hparams["epochs"])
        self._set_lr(self.current_epoch)
        if self.search_hparams.get("cuda_graph"):
            check_graphable(self.device, self.trainer)
            self._graphs = GraphedCalls()

    def on_train_epoch_start(self) -> None:
        self.strategy.set_epoch(self.current_epoch, self.search_hparams["epochs"])

    def on_train_epoch_end(self) -> None:
        w_opt = self._optimizers()[0].optimizer
        self.log("train/lr", w_opt.param_groups[0]["lr"], sync_dist=True)
        for kind, p in self.strategy.probabilities().items():
            entropy = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
            self.log(f"arch/{kind}_entropy", entropy, sync_dist=True)
        self._set_lr(self.current_epoch + 1)  # as a scheduler steps: callbacks see it next epoch


def check_graphable(device: torch.device, trainer: pl.Trainer) -> None:
    """Raise :class:`ConfigError` naming the key to change when ``search.cuda_graph`` cannot
    run on this trainer: CUDA, one process, no fp16 loss scaling."""
    if device.type != "cuda":
        raise ConfigError(
            f"search.cuda_graph=true needs a CUDA device (trainer=gpu), the search runs on {device}"
        )
    if trainer.world_size > 1:
        raise ConfigError(
            f"search.cuda_graph=true runs in one process; trainer.devices gives {trainer.world_size}"
        )
    if str(trainer.precision).startswith("16"):
        raise ConfigError(
            f"search.cuda_graph=true needs trainer.precision bf16-mixed or 32-true, not "
            f"{trainer.precision} (its loss scaling steps outside the graph)"
        )
