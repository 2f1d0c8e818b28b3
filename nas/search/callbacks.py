"""Callbacks that turn the strategy's state into run-directory artifacts."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

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
