"""Callbacks that turn the strategy's state into run-directory artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import WeightAveraging

from nas.files import ALPHAS_FILE, DERIVED_FILE
from nas.io import append_jsonl, read_jsonl, write_json_atomic
from nas.search.strategies import Strategy


def derived_record(strategy: Strategy) -> dict[str, str | None]:
    """``{"space", "arch"}`` of the strategy's derived arch; ``arch`` is ``None`` when the
    strategy derives none."""
    space = strategy.space
    return (
        space.to_json(strategy.derived())
        if strategy.derives
        else {"space": space.name, "arch": None}
    )


class ArchitectureWriter(pl.Callback):
    """After every training epoch: derive the architecture the strategy points at and write

    * ``derived.json``: ``{"space", "arch", "epoch", "final": false}`` (replaced atomically);
      ``arch`` is ``null`` for a strategy without architecture parameters (``spos`` and the
      splits' warm-up), which derives nothing;
    * ``alphas.jsonl``: one line ``{"epoch", "probabilities": {kind: [[...]]}}`` per epoch.

    Only rank zero writes; epochs already in ``alphas.jsonl`` (a resumed run) are not repeated.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        strategy = pl_module.strategy
        probs = {k: p.detach().cpu() for k, p in strategy.probabilities().items()}
        epoch = trainer.current_epoch
        write_json_atomic(
            self.run_dir / DERIVED_FILE,
            {**derived_record(strategy), "epoch": epoch, "final": False},
        )
        alphas_path = self.run_dir / ALPHAS_FILE
        if all(r["epoch"] != epoch for r in read_jsonl(alphas_path)):
            append_jsonl(
                alphas_path,
                {"epoch": epoch, "probabilities": {k: p.tolist() for k, p in probs.items()}},
            )


class LastEpochsAverage(WeightAveraging):
    """Checkpoint averaging: the uniform average of the weights (and buffers) at the ends of
    the last ``epochs`` of a fit of ``max_epochs`` epochs, which "Evaluating Efficient
    Performance Estimators of Neural Architectures" (arXiv 2008.03064) finds to steady
    one-shot rankings. Lightning's :class:`WeightAveraging` does the work: the fit ends with
    the average in the module and checkpoints hold it (the current weights beside it, so a
    run resumes). Before the first averaged epoch, validation and checkpoints see the
    current weights, not the copy the average starts from."""

    def __init__(self, epochs: int, max_epochs: int) -> None:
        if epochs < 1:
            raise ValueError(f"checkpoint averaging needs epochs >= 1, got {epochs}")
        super().__init__()
        self.first_epoch = max(0, max_epochs - epochs)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return epoch_idx is not None and epoch_idx >= self.first_epoch

    def _started(self) -> bool:
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._started():
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._started():
            super().on_validation_epoch_end(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._started():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)
