"""Checkpoint averaging of the fine-tune (``finetune.average_epochs``)."""

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from nas.search import LastEpochsAverage


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 2)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


class _EpochEnds(pl.Callback):
    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.weights.append(pl_module.net.weight.detach().clone())


def _fit(max_epochs: int, callbacks, ckpt_path=None, root=None) -> _Tiny:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    model = _Tiny()
    pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=root is not None,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, DataLoader(data, batch_size=8), ckpt_path=ckpt_path, weights_only=False)
    return model


def test_the_fit_ends_with_the_mean_of_the_last_epochs_weights():
    ends = _EpochEnds()
    model = _fit(4, [ends, LastEpochsAverage(2, 4)])
    assert len(ends.weights) == 4 and not torch.equal(ends.weights[2], ends.weights[3])
    torch.testing.assert_close(model.net.weight, (ends.weights[2] + ends.weights[3]) / 2)


def test_a_run_resumed_inside_the_averaged_epochs_ends_with_the_same_average(tmp_path):
    whole = _fit(4, [LastEpochsAverage(3, 4)])
    first = _fit(
        3,
        [LastEpochsAverage(3, 4), pl.callbacks.ModelCheckpoint(tmp_path, save_last=True)],
        root=tmp_path,
    )
    assert not torch.allclose(first.net.weight, whole.net.weight)
    resumed = _fit(4, [LastEpochsAverage(3, 4)], ckpt_path=tmp_path / "last.ckpt")
    torch.testing.assert_close(resumed.net.weight, whole.net.weight)
