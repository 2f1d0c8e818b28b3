"""A finished run in Weights & Biases (``logger=wandb``): the archive as a table, the final
record as the run's summary, the plots as images and the exported files as a model artifact.

Logged into the run the search's ``WandbLogger`` opened (the same process reuses it), which is
offline unless ``WANDB_API_KEY`` or ``WANDB_MODE`` says otherwise (``conf/logger/wandb.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from nas.evolution.archive import Entry
from nas.files import FINAL_FILE, ONNX_FILE, SUBNET_FILE, SUMMARY_FILE
from nas.spaces import SearchSpace

#: the final record's fields that become the W&B run summary
SUMMARY_KEYS = ("arch", "score", "oneshot_score", "test_accuracy", "params", "flops", "queries")


def report_to_wandb(
    logger: WandbLogger,
    run_dir: Path,
    space: SearchSpace,
    entries: Sequence[Entry],
    record: Mapping[str, Any],
) -> None:
    """Log the archive ``entries``, the final ``record`` and its files of ``run_dir``."""
    import wandb

    run = logger.experiment
    table = wandb.Table(
        columns=["arch", "score", "source", "stage", "seconds"],
        data=[
            [space.to_str(e.arch), e.score.value, e.score.source, e.stage, e.score.cost.seconds]
            for e in entries
        ],
    )
    images = {
        f"plots/{Path(p).stem}": wandb.Image(str(run_dir / p))
        for p in record.get("plots") or []
        if (run_dir / p).exists()
    }
    run.log({"archive": table, **images})
    run.summary.update({f"final/{k}": record[k] for k in SUMMARY_KEYS if k in record})
    artifact = wandb.Artifact("final-subnet", type="model", metadata=dict(record))
    for name in (FINAL_FILE, SUBNET_FILE, ONNX_FILE, SUMMARY_FILE):
        if (run_dir / name).exists():
            artifact.add_file(str(run_dir / name))
    run.log_artifact(artifact)
