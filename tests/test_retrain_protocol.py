"""The retrain stage follows the DARTS protocol: the test split chooses nothing (no checkpoint
is kept by test accuracy), ``retrain.json`` reports the final weights' test accuracy, and
per-epoch validation, when wanted, runs on a part held out of the training split."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from nas.data import RetrainDataModule
from nas.files import FINAL_FILE, RETRAIN_DIR, RETRAIN_FILE
from nas.io import read_json, write_json_atomic
from nas.pipeline import run
from nas.retrain import RetrainModule
from nas.search.checkpoints import module_from_checkpoint
from nas.spaces import get_space


def retrain_cfg(tiny_cfg, *overrides: str):
    """A 2-epoch retraining on the tiny synthetic data of a random DARTS arch, written as the
    run's ``final.json``, with the checkpoints callbacks (the best by ``val/acc``, the last)."""
    cfg = tiny_cfg(
        "stages=[retrain]",
        "callbacks=checkpoints",
        "retrain.epochs=2",
        "retrain.batch_size=16",
        "retrain.cutout=0",
        *overrides,
    )
    space = get_space("darts")
    write_json_atomic(
        Path(cfg.paths.output_dir) / FINAL_FILE, space.to_json(space.sample(random.Random(0)))
    )
    return cfg


def accuracy_on_test(cfg, module: RetrainModule) -> float:
    """``module``'s accuracy (in %) on the test split of ``cfg.dataset``, in eval mode."""
    data = RetrainDataModule(cfg.dataset, batch_size=16, cutout=0)
    data.setup()
    module.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in data.test_dataloader():
            right += int((module(x).argmax(-1) == y).sum())
            total += len(y)
    return 100.0 * right / total


def test_retrain_keeps_no_checkpoint_chosen_by_test_accuracy(tiny_cfg, tmp_path):
    """Without a holdout nothing is validated: the retrain dir holds last.ckpt alone (the old
    stage validated on the test split and kept ``best-*.ckpt`` by it), and ``test_accuracy``
    is the last epoch's weights' accuracy on the test split."""
    cfg = retrain_cfg(tiny_cfg)
    run(cfg)
    checkpoints = tmp_path / RETRAIN_DIR / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]
    record = read_json(tmp_path / RETRAIN_FILE)
    last = module_from_checkpoint(RetrainModule, checkpoints / "last.ckpt")
    # the final weights: 2 epochs of 128 images in batches of 16
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 16
    assert record["test_accuracy"] == pytest.approx(accuracy_on_test(cfg, last), abs=1e-4)


def test_retrain_validates_on_a_holdout_of_the_training_split(tiny_cfg, tmp_path):
    """With ``retrain.val_portion`` the best checkpoint is chosen on held-out training images,
    which the weights never train on; the reported accuracy is still the final weights'."""
    cfg = retrain_cfg(tiny_cfg, "retrain.val_portion=0.25")
    data = RetrainDataModule(cfg.dataset, 16, 0, val_portion=0.25)
    data.setup()
    held, kept = data.val_set.indices, data.train_set.indices
    assert len(held) == 32 and not set(held) & set(kept) and len(held) + len(kept) == 128

    run(cfg)
    checkpoints = tmp_path / RETRAIN_DIR / "checkpoints"
    best = [p for p in checkpoints.iterdir() if p.name.startswith("best-")]
    assert len(best) == 1  # chosen by val/acc on the holdout
    callbacks = torch.load(best[0], weights_only=False)["callbacks"]
    (state,) = [s for s in callbacks.values() if s.get("monitor") == "val/acc"]
    assert state["best_model_path"] == str(best[0])
    record = read_json(tmp_path / RETRAIN_FILE)
    last = module_from_checkpoint(RetrainModule, checkpoints / "last.ckpt")
    assert record["test_accuracy"] == pytest.approx(accuracy_on_test(cfg, last), abs=1e-4)


@pytest.mark.parametrize("portion", [-0.1, 1.0, 0.001])
def test_retrain_rejects_a_val_portion_that_holds_out_nothing_or_everything(tiny_cfg, portion):
    from nas.errors import ConfigError

    cfg = retrain_cfg(tiny_cfg)
    with pytest.raises(ConfigError, match="val_portion"):
        RetrainDataModule(cfg.dataset, 16, 0, val_portion=portion).setup()
