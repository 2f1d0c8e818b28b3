"""What a user waits for: whole search epochs through Lightning, data included.

Composes ``python train.py <overrides>`` (default ``+experiment=cifar10_fast``), builds the
search's datamodule, ``SupernetModule`` and Trainer as the ``search`` stage does, and trains
``--epochs`` epochs (validation and checkpoints included), timing each one. The first epoch
carries the one-time costs (cuDNN's autotuning, compilation, CUDA-graph capture); the later
ones are the steady state. The projection of the configured search (``search.epochs``) is the
set-up (data read onto the device, the module built) plus the first epoch's one-time costs
(its time over a steady epoch's of its kind) plus every epoch at a steady epoch's time. With
``trainer.limit_train_batches`` / ``limit_val_batches`` (a short check of a slow configuration)
the epochs timed are cut short and the projection scales the steady epoch's training and
validation seconds up to the full ones (training steps: the shorter half's batches).

img/s counts the training images one epoch's steps push through forward and backward: both
halves' batches of a bi-level step (``2 * batch * steps``) over the time from the first
step's start to the last step's end. The rest of an epoch (validation, and the epoch's own
work: its order and crops, logging, the wiring pictures, the checkpoints) is timed apart; the
projection scales the steps and the validation batches to their full counts and adds the
epoch's own work once per epoch. A search that validates every epoch is timed so; one that
validates every ``n`` > 1 epochs (``trainer.check_val_every_n_epoch``; the checkpoint and the
wiring pictures come with validation) is timed validating every second epoch (``--epochs``
>= 4: epochs 1 and 3 validate, epoch 2, neither the first nor the last, does not), and the
projection counts ``search.epochs // n`` epochs like the last validated one and the others
like epoch 2.

    python scripts/bench_epoch.py --override trainer=gpu --out outputs/bench/epoch.json

``--out`` writes JSON: ``overrides``, ``device``, ``batch_size``, ``steps_per_epoch`` (timed),
``full_steps_per_epoch``, ``val_batches`` (timed), ``full_val_batches``, ``epoch_s`` (each
epoch's seconds), ``steps_s`` (their training steps'), ``val_s`` (their validation's, 0 where
an epoch did not validate),
``img_per_s`` (of the last epoch's steps), ``setup_s``, ``search_epochs``,
``validated_epochs`` and ``projected_search_min``.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from nas.config import register_configs
from nas.data import SearchDataModule
from nas.errors import ConfigError
from nas.io import write_json_atomic
from nas.search import SupernetModule, build_trainer

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["+experiment=cifar10_fast"]


class EpochClock(pl.Callback):
    """The wall time at each training epoch's start and at the end of fit, and each epoch's
    seconds of training steps and of validation, the device synchronised first so that queued
    work counts where it ran (only at these marks: the steps between run as they would)."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.steps_s: list[float] = []
        self.val_s: dict[int, float] = {}  # by epoch

    def _now(self, module: pl.LightningModule) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.marks.append(self._now(module))

    def on_train_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if batch_idx == 0:
            self._steps_start = self._now(module)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            self.steps_s.append(self._now(module) - self._steps_start)

    def on_validation_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._val_start = self._now(module)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_s[trainer.current_epoch] = self._now(module) - self._val_start

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.marks.append(self._now(module))


def run(overrides: list[str], epochs: int) -> dict[str, object]:
    """Train ``epochs`` epochs of the composed search; its timings."""
    start = time.perf_counter()
    register_configs()
    clock = EpochClock()
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            extra = ["logger=none", f"paths.output_dir={tmp}"]
            cfg = compose("train", overrides=[*overrides, *extra])
        every = int(cfg.trainer.get("check_val_every_n_epoch") or 1)
        if every > 1 and epochs < 4:
            raise ConfigError(
                f"--epochs must be >= 4 for a search that validates every {every} epochs "
                "(a steady epoch with validation and one without, neither the first)"
            )
        with open_dict(cfg):  # time a steady epoch of each kind
            cfg.trainer.check_val_every_n_epoch = min(every, 2)
        pl.seed_everything(cfg.seed, workers=True)
        torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
        dm = SearchDataModule(cfg.dataset, seed=cfg.seed)
        dm.setup()
        module = SupernetModule.from_config(cfg, dm.num_classes, dm.in_channels)
        trainer = build_trainer(cfg, Path(tmp), [clock], max_epochs=epochs)
        trainer.fit(module, datamodule=dm)
    marks = clock.marks
    epoch_s = [b - a for a, b in itertools.pairwise(marks)]
    val_s = [clock.val_s.get(i, 0.0) for i in range(len(epoch_s))]
    steps_s = clock.steps_s
    own_s = [e - t - v for e, t, v in zip(epoch_s, steps_s, val_s, strict=True)]
    steps, val_batches = trainer.num_training_batches, sum(trainer.num_val_batches)
    full = min(len(loader) for loader in dm.train_dataloader().iterables.values())
    full_val = len(dm.val_dataloader())
    batch = int(cfg.dataset.batch_size)
    total = int(cfg.search.epochs)
    setup_s = marks[0] - start
    validated_at = max(clock.val_s, default=len(epoch_s) - 1)  # steady: the last validated, ...
    plain_at = 2 if every > 1 else validated_at  # ... one without validation (if any)
    once = max(epoch_s[0] - epoch_s[plain_at], 0.0)  # the first epoch's one-time costs
    steps_full = steps_s[-1] * full / steps
    val = val_s[validated_at] * full_val / val_batches if val_batches else 0.0
    validated = total // every
    search_s = (
        setup_s
        + once
        + validated * (steps_full + val + own_s[validated_at])
        + (total - validated) * (steps_full + own_s[plain_at])
    )
    device = trainer.strategy.root_device
    return {
        "overrides": overrides,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "batch_size": batch,
        "steps_per_epoch": steps,
        "full_steps_per_epoch": full,
        "val_batches": val_batches,
        "full_val_batches": full_val,
        "epoch_s": epoch_s,
        "steps_s": steps_s,
        "val_s": val_s,
        "img_per_s": 2 * batch * steps / steps_s[-1],
        "setup_s": setup_s,
        "search_epochs": total,
        "validated_epochs": validated,
        "projected_search_min": search_s / 60,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--override", action="append", default=[], help="a Hydra override (repeatable)")
    p.add_argument("--no-default", action="store_true", help=f"do not prepend {DEFAULT}")
    p.add_argument(
        "--epochs",
        type=int,
        default=2,
        help="epochs timed (>= 2: one warm; >= 4 when the search validates every n > 1 epochs)",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.epochs < 2:
        p.error(f"--epochs must be >= 2 (the first carries one-time costs), got {args.epochs}")
    overrides = (DEFAULT if not args.no_default else []) + args.override
    try:
        r = run(overrides, args.epochs)
    except ConfigError as err:  # a mistake in the overrides or --epochs: named, no traceback
        p.error(str(err))
    print(f"\nsearch epochs of: {' '.join(overrides)} ({r['device']})")
    print(
        "| epoch | seconds | training steps | validation | the epoch's own work | steps' img/s |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    images = 2 * r["batch_size"] * r["steps_per_epoch"]
    for i, (e, t, v) in enumerate(zip(r["epoch_s"], r["steps_s"], r["val_s"], strict=True)):
        print(f"| {i} | {e:.1f} | {t:.1f} | {v:.1f} | {e - t - v:.1f} | {images / t:.0f} |")
    print(
        f"set-up {r['setup_s']:.1f} s; {r['steps_per_epoch']} steps (of "
        f"{r['full_steps_per_epoch']}) of 2x{r['batch_size']} images, {r['val_batches']} "
        f"validation batches (of {r['full_val_batches']}); "
        f"{r['search_epochs']} epochs ({r['validated_epochs']} validated) projected: "
        f"{r['projected_search_min']:.1f} min"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out, r)


if __name__ == "__main__":
    main()
