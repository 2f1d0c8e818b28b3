"""``SupernetModule``: what each half of a step reads and changes, clipping under a grad
scaler, the learning-rate schedule, and restoring a module from its checkpoint."""

import copy
import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision

from nas.pipeline import SUPERNET_FILE, run
from nas.search import SupernetModule
from nas.search.strategies import frozen
from tests.conftest import search_module as _module


def _fit(module, dm, **flags) -> pl.Trainer:
    trainer = pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **flags,
    )
    trainer.fit(module, datamodule=dm)
    return trainer


def test_arch_step_reads_the_arch_half_and_weight_step_leaves_alphas(tiny_cfg):
    dm, module = _module(tiny_cfg())
    seen: dict[str, object] = {}
    arch_loss = module.strategy.arch_loss

    def recording_arch_loss(supernet, x, y):
        seen["arch_x"] = x.clone()
        return arch_loss(supernet, x, y)

    module.strategy.arch_loss = recording_arch_loss

    class Spy(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen["batch"] = batch
            seen["alphas0"] = {k: a.detach().clone() for k, a in pl_module.strategy.alphas.items()}

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            if optimizer is trainer.optimizers[0]:  # the weight step, after the arch step
                seen["alphas1"] = {
                    k: a.detach().clone() for k, a in pl_module.strategy.alphas.items()
                }

    _fit(module, dm, max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[Spy()])
    batch = seen["batch"]
    assert torch.equal(seen["arch_x"], batch["arch"][0])
    assert not torch.equal(seen["arch_x"], batch["train"][0])
    alphas0, alphas1 = seen["alphas0"], seen["alphas1"]
    # the arch step moved the alphas; the weight step after it did not
    assert all(not torch.equal(alphas0[k], alphas1[k]) for k in alphas0)
    assert all(torch.equal(alphas1[k], a.detach()) for k, a in module.strategy.alphas.items())


def test_frozen_restores_requires_grad():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    net[1].bias.requires_grad_(False)
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]


def _weight_update(cfg_maker, fp16: bool) -> torch.Tensor:
    dm, module = _module(cfg_maker("search.grad_clip=5.0", "search.arch_lr=0.0"))
    before = torch.cat([p.detach().flatten().clone() for p in module.supernet.parameters()])
    # Lightning turns precision="16-mixed" into bf16 on CPU; the plugin keeps fp16 + scaler
    plugins = (
        [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**16))]
        if fp16
        else []
    )
    _fit(module, dm, max_epochs=1, limit_train_batches=1, limit_val_batches=0, plugins=plugins)
    after = torch.cat([p.detach().flatten() for p in module.supernet.parameters()])
    return after - before


def test_fp16_grad_scaler_clips_unscaled_gradients(tiny_cfg):
    """fp16 with a grad scaler takes the fp32 step: same direction, similar size. Clipping the
    scaled gradients (x65536) to norm 5 would shrink the step to weight decay alone."""
    fp32 = _weight_update(tiny_cfg, fp16=False)
    fp16 = _weight_update(tiny_cfg, fp16=True)
    cosine = torch.nn.functional.cosine_similarity(fp32, fp16, dim=0)
    ratio = fp16.norm() / fp32.norm()
    assert cosine > 0.9, cosine
    assert 0.7 < ratio < 1.4, ratio


def test_learning_rate_follows_the_cosine_schedule(tiny_cfg):
    cfg = tiny_cfg("search.epochs=3", "search.w_lr=0.1", "search.w_lr_min=0.01")
    dm, module = _module(cfg)
    lrs = []

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    _fit(module, dm, max_epochs=3, limit_train_batches=1, limit_val_batches=0, callbacks=[Record()])
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert lrs == pytest.approx(expected)


def test_supernet_checkpoint_loads_with_lightning(finished_runs):
    path = finished_runs() / SUPERNET_FILE
    restored = SupernetModule.load_from_checkpoint(path, weights_only=True)
    state = torch.load(path, weights_only=True)["state_dict"]
    restored_state = restored.state_dict()
    assert set(restored_state) == set(state)
    assert all(torch.equal(restored_state[k], v) for k, v in state.items())
    assert restored.hparams["search"]["strategy"] == "darts"
    x = torch.randn(2, 3, 8, 8)
    restored.eval()
    copy_ = copy.deepcopy(restored)
    w = restored.strategy.eval_weights()
    assert torch.equal(restored.supernet(x, w), copy_.supernet(x, w))


class PoisonAtEpoch(pl.Callback):
    """Makes the supernet's weights NaN when ``epoch`` starts (a divergence on cue)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for p in pl_module.supernet.parameters():
                    p.fill_(float("nan"))


def test_a_diverging_search_stops_naming_the_step_and_keeps_its_checkpoint(tiny_cfg, tmp_path):
    from nas.errors import NumericsError

    poison = (
        "+callbacks.poison._target_=tests.test_module.PoisonAtEpoch",
        "+callbacks.poison.epoch=1",
    )
    with pytest.raises(NumericsError, match=r"epoch 1, step \d+") as err:
        run(tiny_cfg("search.epochs=3", *poison))
    assert "search.w_lr" in str(err.value) and "trainer.precision=32-true" in str(err.value)
    kept = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert kept["epoch"] == 0  # the last finished epoch's checkpoint, not overwritten
    assert all(
        torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point()
    )


class PoisonAtStep(pl.Callback):
    """Makes the supernet's weights NaN after training step ``step`` (before its checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, *args):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.supernet.parameters()).fill_(float("inf"))


def test_non_finite_weights_are_never_checkpointed(tiny_cfg, tmp_path):
    """Weights that diverge right before a mid-epoch checkpoint stop the run there: the
    checkpoint of two steps earlier is the one kept."""
    from nas.errors import NumericsError

    poison = (
        "+callbacks.poison._target_=tests.test_module.PoisonAtStep",
        "+callbacks.poison.step=4",
    )
    with pytest.raises(
        NumericsError, match=r"checkpointed tensor 'supernet\..*' is not finite at epoch 0, step 4"
    ):
        run(tiny_cfg("checkpoint_every_n_steps=2", *poison))
    kept = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert kept["global_step"] == 2
    assert all(
        torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point()
    )


def test_single_path_draws_follow_the_run_seed():
    """``search=spos`` draws its paths from the run's ``seed``: a seed sweep trains other
    paths, the same seed the same ones."""
    from tests.conftest import TINY, compose_cfg

    def paths(seed: int) -> list[torch.Tensor]:
        module = SupernetModule.from_config(compose_cfg(*TINY, "search=spos", f"seed={seed}"), 4, 3)
        return [w for _ in range(4) for p in module.strategy.train_paths() for w in p.values()]

    same, other = paths(1), paths(2)
    assert all(torch.equal(a, b) for a, b in zip(same, paths(1), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(same, other, strict=True))
