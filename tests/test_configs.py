"""Configs: every experiment composes and runs with every space and offline dataset; the
Trainer, callbacks and loggers are built from config; mistakes fail at start-up by name."""

from pathlib import Path
from random import Random

import pytest
import pytorch_lightning as pl
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from nas.config import TrainConfig, check_config
from nas.errors import ConfigError
from nas.io import read_json, write_json_atomic
from nas.pipeline import run
from nas.search import build_space, build_strategy, build_trainer
from tests.conftest import CONF_DIR, compose_cfg

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SPACES = sorted(p.stem for p in (CONF_DIR / "space").glob("*.yaml"))
OFFLINE_DATASETS = ("digits", "synthetic")


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_a_step_with_every_space_and_offline_dataset(experiment, tmp_path):
    for space in SPACES:
        for dataset in OFFLINE_DATASETS:
            out = tmp_path / f"{space}-{dataset}"
            found = tmp_path / f"{space}.json"
            # a _retrain experiment retrains a given arch: a final.json
            extra = [f"arch={found}"] if experiment.endswith("_retrain") else []
            cfg = compose_cfg(
                f"+experiment={experiment}",
                f"space={space}",
                f"dataset={dataset}",
                "trainer=cpu",  # cifar10_fast asks for a GPU; these machines have none
                "search.cuda_graph=false",  # ... and CUDA graphs
                "dataset.batch_size=16",  # cifar10_fast's 256 exceeds the offline sets' halves
                "trainer.fast_dev_run=true",
                "trainer.enable_progress_bar=false",
                "callbacks.wiring_diagnostics.pictures=false",
                "logger=none",
                # a step of each stage: the smallest networks (the experiments' sizes are
                # built elsewhere), two subnets sampled, two evolved, one batch each
                "scale=tiny",
                "sample.size=2",
                "evolution.budget=2",
                "oneshot.calib_batches=1",
                "oneshot.val_batches=1",
                "scorer.reference=4",  # nb201_cifar10 scores with zero-cost proxies
                "scorer.images=16",
                "shortlist.steps=2",  # nb201_cifar10 trains a shortlist
                f"paths.output_dir={out}",
                *extra,
            )
            sized = build_space(cfg.space)  # an mbv3 arch has as many stages as the scale
            if extra:
                write_json_atomic(found, sized.to_json(sized.sample(Random(0))))
            result = run(cfg)
            assert result.space == space
            # the arch retrained, or exported (a single-path search derives none)
            record = result.retrain if extra else read_json(out / "final.json")
            sized.from_json(record)  # a valid arch of the chosen space


def test_each_space_reads_its_size_from_the_scale(tmp_path):
    darts = compose_cfg("scale=small", "space=darts")
    nb201 = compose_cfg("scale=small", "space=nb201")
    execution = {"backend": "auto", "compile": False}  # how it runs, not its size
    assert OmegaConf.to_container(darts.space.supernet, resolve=True) == dict(
        darts.scale.darts.supernet, **execution
    )
    assert OmegaConf.to_container(nb201.space.supernet, resolve=True) == dict(
        nb201.scale.nb201.supernet, **execution
    )
    # a size key given on the command line wins over the scale
    assert compose_cfg("space.supernet.c=5").space.supernet.c == 5


def test_any_trainer_flag_from_the_command_line(tmp_path):
    cfg = compose_cfg(
        "trainer.val_check_interval=0.5",
        "trainer.num_nodes=1",
        "trainer.limit_val_batches=3",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
    )
    check_config(cfg)
    trainer = build_trainer(cfg, tmp_path)
    assert trainer.val_check_interval == 0.5 and trainer.limit_val_batches == 3
    assert trainer.num_nodes == 1 and trainer.progress_bar_callback is None
    fast = build_trainer(
        compose_cfg("trainer.fast_dev_run=true", "logger=none", f"paths.output_dir={tmp_path}"),
        tmp_path,
    )
    assert fast.fast_dev_run is True
    cfg = compose_cfg("search.epochs=7", f"paths.output_dir={tmp_path}", "logger=none")
    assert build_trainer(cfg, tmp_path).max_epochs == 7


def test_max_epochs_has_one_source():
    cfg = compose_cfg("trainer.max_epochs=3", "search.epochs=50")
    with pytest.raises(ConfigError, match=r"search\.epochs"):
        check_config(cfg)


def test_callbacks_and_loggers_are_instantiated(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose_cfg(
        f"paths.output_dir={tmp_path}",
        "+callbacks.lr_monitor._target_=pytorch_lightning.callbacks.LearningRateMonitor",
        "callbacks.model_checkpoint.monitor=val/loss",
        "callbacks.model_checkpoint.mode=min",
    )
    trainer = build_trainer(cfg, tmp_path)
    kinds = {type(c) for c in trainer.callbacks}
    assert {ModelCheckpoint, LearningRateMonitor} <= kinds
    assert trainer.checkpoint_callback.monitor == "val/loss"
    assert [type(lg) for lg in trainer.loggers] == [CSVLogger]
    assert Path(trainer.loggers[0].log_dir) == tmp_path

    none = build_trainer(
        compose_cfg("callbacks=none", "logger=none", f"paths.output_dir={tmp_path}"), tmp_path
    )
    assert [c.monitor for c in none.callbacks if isinstance(c, ModelCheckpoint)] == [None]
    assert none.loggers == []

    wandb = build_trainer(compose_cfg(f"paths.output_dir={tmp_path}", "logger=wandb"), tmp_path)
    (logger,) = wandb.loggers
    assert isinstance(logger, WandbLogger) and logger._wandb_init["mode"] == "offline"


def test_mistyped_keys_fail_with_their_name():
    with pytest.raises(ConfigCompositionException, match="w_lrr"):
        compose_cfg("search.w_lrr=0.1")
    with pytest.raises(ConfigCompositionException, match="max_epoch"):
        compose_cfg("trainer.max_epoch=3")
    # the same check guards every group and experiment YAML merged into the schema
    schema = OmegaConf.structured(TrainConfig)
    with pytest.raises(ConfigKeyError, match="batch_sise"):
        OmegaConf.merge(schema, OmegaConf.create({"dataset": {"batch_sise": 3}}))
    with pytest.raises(ConfigKeyError, match="precison"):
        OmegaConf.merge(schema, OmegaConf.create({"trainer": {"precison": "bf16"}}))


def test_wrong_type_fails_with_key_name():
    with pytest.raises(ConfigCompositionException, match="epochs"):
        compose_cfg("search.epochs=many")


def test_unknown_strategy_lists_known():
    cfg = compose_cfg("search.strategy=enas")
    with pytest.raises(ConfigError, match="darts"):
        build_strategy(build_space(cfg.space), cfg.search)


def test_matmul_precision_is_a_key(tiny_cfg):
    import torch

    run(tiny_cfg("float32_matmul_precision=medium", "trainer.fast_dev_run=true"))
    assert torch.get_float32_matmul_precision() == "medium"
    torch.set_float32_matmul_precision("highest")


def test_trainer_is_a_lightning_trainer(tmp_path):
    cfg = compose_cfg("logger=none", f"paths.output_dir={tmp_path}")
    assert isinstance(build_trainer(cfg, tmp_path), pl.Trainer)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("search.epochs=-1", "search.epochs"),
        ("evolution.budget=-5", "evolution.budget"),
        ("sample.size=0", "sample.size"),
        ("dataset.name=imagenet", "dataset.name"),
        ("space.name=nasnet", "space.name"),
        ("search.strategy=enas", "search.strategy"),
        ("search.sampler=greedy", "search.sampler"),
        ("prescreen.proxy=fisher", "prescreen.proxy"),
        ("predictor.kind=gcn", "predictor.kind"),
        ("evolution.algorithm=bayesian", "evolution.algorithm"),
        ("oneshot.metric=top5", "oneshot.metric"),
        ("evolution.refine.q=0", "refine.q"),
        ("evolution.refine.smooth=2", "refine.smooth"),
        ("predictor.decay=0", "predictor.decay"),
        ("predictor.max_pairs=0", "predictor.max_pairs"),
        ("constraints.max_params=0", "constraints.max_params"),
        ("constraints.max_latency_ms=-2", "constraints.max_latency_ms"),
        ("objectives=[score,speed]", "objectives"),
        ("objectives=[latency]", "objectives"),
        ("objectives=[score,params,params]", "objectives"),
        ("export.choice=middle", "export.choice"),
        ("export.choice=knee", "export.choice"),
        ("latency.repeats=0", "latency.repeats"),
    ],
)
def test_invalid_values_fail_before_training_naming_the_key(override, named, tiny_cfg, tmp_path):
    cfg = tiny_cfg(override)
    if override.startswith("search.epochs"):  # trainer.max_epochs follows search.epochs
        cfg.trainer.max_epochs = cfg.search.epochs
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


GROUPS = {
    g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml"))
    for g in (
        "dataset",
        "space",
        "scale",
        "search",
        "trainer",
        "callbacks",
        "logger",
        "evolution",
        "predictor",
    )
}


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes_and_passes_the_checks(group, option, tmp_path):
    # the split searches need a space whose edges choose ops independently
    space = ["space=nb201"] if (group, option) in {("search", "nas_lid"), ("search", "gm")} else []
    cfg = compose_cfg(f"{group}={option}", *space, f"paths.output_dir={tmp_path}")
    OmegaConf.resolve(cfg)
    check_config(cfg)
    if group in ("callbacks", "logger") or (group == "trainer" and option == "cpu"):
        build_trainer(cfg, tmp_path)
    if group == "search" and option == "training_free":  # no strategy: zero-cost scores
        assert "oneshot" not in cfg.scorer.components
    elif group == "search":
        build_strategy(build_space(cfg.space), cfg.search)


def test_fair_finetune_on_the_darts_space_fails_before_the_search(tiny_cfg, tmp_path):
    """FairNAS needs edges that choose ops independently; on the DARTS space the fine-tune's
    sampler is refused at start-up, not after the whole search."""
    cfg = tiny_cfg("stages=[search,derive,finetune]", "finetune.epochs=1", "finetune.sampler=fair")
    with pytest.raises(ConfigError, match=r"finetune\.sampler=fair"):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_distinct_finetune_on_the_darts_space_fails_before_the_search(tiny_cfg, tmp_path):
    """The DARTS space cannot list its distinct archs: the sampler is refused at start-up."""
    cfg = tiny_cfg(
        "stages=[search,derive,finetune]", "finetune.epochs=1", "finetune.sampler=distinct"
    )
    with pytest.raises(ConfigError, match=r"finetune\.sampler=distinct"):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_a_retrain_holdout_out_of_range_fails_before_the_search(tiny_cfg, tmp_path):
    cfg = tiny_cfg("stages=[search,derive,retrain]", "retrain.val_portion=1.5")
    with pytest.raises(ConfigError, match=r"retrain\.val_portion=1\.5"):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()
