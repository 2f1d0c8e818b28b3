"""The stages that train: the search, the single-path fine-tune, the split into
sub-supernets and the retraining of the final arch. Each trains through Lightning and
resumes from its ``checkpoints/last.ckpt``."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from nas.config import WeightOptimConfig
from nas.data import RetrainDataModule, SearchDataModule
from nas.errors import ConfigError, NasError
from nas.evaluate import OneShotEvaluator
from nas.files import (
    CHECKPOINT_DIR,
    FINAL_FILE,
    FINETUNE_DIR,
    FINETUNED_FILE,
    PRUNED_FILE,
    RETRAIN_DIR,
    RETRAIN_FILE,
    SPLIT_DIR,
    SPLITS_FILE,
    SUPERNET_FILE,
)
from nas.io import read_json, write_json_atomic
from nas.memory import PeakMemory
from nas.pipeline.state import Run
from nas.retrain import RetrainModule
from nas.search import ArchitectureWriter, LastEpochsAverage, SupernetModule, build_trainer
from nas.search.checkpoints import check_resumable, module_from_checkpoint
from nas.split.measure import choose_split
from nas.split.restriction import Restriction

log = logging.getLogger(__name__)


def fit(
    run: Run, what: str, trainer: pl.Trainer, module: pl.LightningModule, data: Any, root: Path
) -> None:
    """``trainer.fit``, resumed from ``root/checkpoints/last.ckpt`` when it exists (and
    ``resume``; it must be readable and of the same config); a trainer stopped by Ctrl-C
    raises, naming how to continue."""
    last = root / CHECKPOINT_DIR / "last.ckpt"
    ckpt_path = str(last) if run.cfg.resume and last.exists() else None
    if ckpt_path:
        check_resumable(last, module)
        log.info("resuming the %s from %s", what, ckpt_path)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    if trainer.interrupted:
        raise KeyboardInterrupt(f"{what} interrupted; rerun with the same hydra.run.dir to resume")


def search(run: Run) -> None:
    """Train the supernet and strategy; writes ``checkpoints/``, ``derived.json``, ``supernet.ckpt``
    (and, through the ``diagnostics`` callback, ``wiring.jsonl`` and ``wiring/``)."""
    cfg = run.cfg
    datamodule = SearchDataModule(cfg.dataset, cfg.seed)  # Lightning runs prepare_data, then setup
    module = SupernetModule.from_config(cfg, datamodule.num_classes, datamodule.in_channels)
    trainer = build_trainer(cfg, run.dir, [ArchitectureWriter(run.dir)])
    for logger in trainer.loggers:  # the whole resolved config beside the module's own
        logger.log_hyperparams({"config": OmegaConf.to_container(cfg, resolve=True)})
    fit(run, "search", trainer, module, datamodule, run.dir)
    # every rank calls save_checkpoint (it synchronises them); rank zero writes the file
    trainer.save_checkpoint(run.path(SUPERNET_FILE), weights_only=False)


def finetune(run: Run) -> None:
    """Train the searched supernet's weights on single paths (``search=spos`` with
    ``finetune.sampler``) for ``finetune.epochs``; writes ``finetuned.ckpt`` (and
    ``finetune/``: its checkpoints and logs)."""
    f = run.cfg.finetune
    searched = module_from_checkpoint(SupernetModule, run.path(SUPERNET_FILE))
    allowed = pruned_space(run, searched) if f.prune else None
    train_single_paths(run, searched, f.epochs, f.sampler, FINETUNE_DIR, FINETUNED_FILE, allowed)


def pruned_space(run: Run, searched: SupernetModule) -> dict[str, list[list[int]]]:
    """The ops each edge keeps after ``finetune.prune``: ``finetune.prune_paths`` random archs
    are scored one-shot on the searched supernet (BatchNorm recalibrated on one batch of the
    weights half, accuracy on one batch of the arch half, ``oneshot.batch_size`` images), each
    op of each edge is rated by the mean score of the archs that hold it, and the
    ``finetune.prune`` worst go. Pruning the space with the supernet, then fine-tuning the
    rest, is one of the one-shot improvements of "Evaluating Efficient Performance Estimators
    of Neural Architectures" (arXiv 2008.03064). Kept in ``pruned.json`` (reused by a rerun
    of the same settings)."""
    f, space = run.cfg.finetune, run.space
    settings = {"prune": f.prune, "paths": f.prune_paths, "batch_size": run.cfg.oneshot.batch_size}
    path = run.path(PRUNED_FILE)
    kept = read_json(path) if path.exists() else None
    if kept is not None and kept["settings"] == settings:
        return kept["allowed"]
    dm, size = run.datamodule, run.cfg.oneshot.batch_size
    calib = dm.fixed_batches("weights", 1, size, seed=run.cfg.seed)
    evaluator = OneShotEvaluator(
        searched.supernet.to(run.device).eval(), calib, dm.fixed_batches("arch", 1, size)
    )
    rng = run.rng("prune")
    archs = [space.sample(rng) for _ in range(f.prune_paths)]
    scores = torch.tensor([s.value for s in evaluator.evaluate(archs)])
    allowed, ratings = {}, {}
    for kind, edges in space.cell_edges.items():
        held = torch.stack([space.one_hot(a)[kind] for a in archs])  # [archs, edges, ops]
        counts = held.sum(0)
        mean = (held * scores[:, None, None]).sum(0) / counts.clamp_min(1)
        mean[counts == 0] = float("inf")  # an op no path held is kept: nothing says it is bad
        order = mean.argsort(dim=1, descending=True)
        keep = len(space.op_names) - f.prune
        allowed[kind] = [sorted(order[e, :keep].tolist()) for e in range(edges)]
        ratings[kind] = [
            [float(m) if c else None for m, c in zip(row, held_row, strict=True)]
            for row, held_row in zip(mean.tolist(), counts.tolist(), strict=True)
        ]
    write_json_atomic(path, {"settings": settings, "allowed": allowed, "ratings": ratings})
    log.info("pruned the space to %s", allowed)
    return allowed


def train_single_paths(
    run: Run,
    start: SupernetModule,
    epochs: int,
    sampler: str,
    subdir: str,
    out: str,
    allowed: dict[str, list[list[int]]] | None = None,
) -> None:
    """Train ``start``'s supernet weights on sampled single paths (``search=spos`` with
    ``sampler``, the ``finetune.*`` optimiser; only the archs ``allowed`` when given) for
    ``epochs`` in ``run_dir/subdir``, resumably; write the result to ``run_dir/out`` (the
    average of the last ``finetune.average_epochs`` epochs' weights when that is > 0)."""
    cfg, f = run.cfg, run.cfg.finetune
    search = {
        **start.hparams["search"],
        "strategy": "spos",
        "sampler": sampler,
        # a sandwich fine-tune distils as the search did; no other sampler distils
        "distill": sampler == "sandwich" and start.hparams["search"].get("distill", False),
        "seed": cfg.seed,
        "epochs": epochs,
        **{k.name: f[k.name] for k in dataclasses.fields(WeightOptimConfig)},
    }
    if allowed is not None:
        search["allowed"] = allowed
    module = SupernetModule(
        start.hparams["space"], search, start.hparams["num_classes"], start.hparams["in_channels"]
    )
    module.supernet.load_state_dict(start.supernet.state_dict())
    average = [LastEpochsAverage(f.average_epochs, epochs)] if f.average_epochs > 0 else []
    trainer = build_trainer(cfg, run.dir, average, subdir=subdir, max_epochs=epochs)
    data = SearchDataModule(cfg.dataset, cfg.seed)
    fit(run, f"single-path training ({subdir})", trainer, module, data, run.path(subdir))
    trainer.save_checkpoint(run.path(out), weights_only=False)


def split(run: Run) -> None:
    """Split the supernet into sub-supernets by ``split.method`` (NAS-LID or GM), level by
    level, each new one fine-tuned on its own archs; writes ``split/<leaf>.ckpt`` and
    ``splits.json`` (after every level: a killed split resumes at its level)."""
    c = run.cfg.split
    path = run.path(SPLITS_FILE)
    full = Restriction.full(run.space).to_json()
    tree = (
        read_json(path)
        if path.exists()
        else {
            "method": c.method,
            "level": 0,
            "done": False,
            "splits": [],
            "peak_mb": [],
            "leaves": [{"id": "", "allowed": full, "file": None}],
        }
    )
    if tree["method"] != c.method:
        raise NasError(
            f"{path} holds a split by split.method={tree['method']}, not {c.method}: rerun with "
            f"split.method={tree['method']} to continue it, or start over in a new hydra.run.dir"
        )
    batches = run.datamodule.fixed_batches(
        "weights", c.batches, run.cfg.oneshot.batch_size, seed=run.cfg.seed
    )
    batches = [(x.to(run.device), y.to(run.device)) for x, y in batches]
    while tree["level"] < c.levels:
        leaves = []
        for leaf in tree["leaves"]:
            module = run.leaf_module(leaf)
            restriction = Restriction.from_json(run.space, leaf["allowed"])
            if not restriction.splittable():
                leaves.append(leaf)
                continue
            with PeakMemory(run.device) as peak:
                chosen = choose_split(
                    module.supernet.to(run.device),
                    restriction,
                    batches,
                    c.method,
                    c.paths,
                    run.cfg.seed,
                    c.k,
                )
            tree["peak_mb"].append(peak.mb)
            tree["splits"].append(
                {
                    "leaf": leaf["id"],
                    "kind": chosen.kind,
                    "edge": chosen.edge,
                    "groups": [list(g) for g in chosen.groups],
                    "cuts": chosen.cuts,
                }
            )
            for g, ops in enumerate(chosen.groups):
                child = {
                    "id": f"{leaf['id']}{g}",
                    "allowed": restriction.narrowed(chosen.kind, chosen.edge, ops).to_json(),
                    "file": f"{SPLIT_DIR}/{leaf['id']}{g}.ckpt",
                }
                if not run.path(child["file"]).exists():
                    train_single_paths(
                        run,
                        module,
                        c.epochs,
                        "uniform",
                        f"{SPLIT_DIR}/{child['id']}",
                        child["file"],
                        child["allowed"],
                    )
                leaves.append(child)
        tree = {**tree, "level": tree["level"] + 1, "leaves": leaves}
        write_json_atomic(path, tree)
    write_json_atomic(path, {**tree, "done": True})


def retrain_arch(run: Run) -> str:
    """The arch to retrain: ``arch`` (a ``final.json`` path or an arch string), else this run's
    ``final.json``; parsed by the space, which names what is wrong."""
    given = run.cfg.arch
    if given is None:
        path = run.path(FINAL_FILE)
        if not path.exists():
            raise NasError(f"{path} is missing: run the export stage first, or set arch=")
        return run.space.to_str(run.space.from_json(read_json(path)))
    if Path(given).is_file():
        return run.space.to_str(run.space.from_json(read_json(given)))
    try:
        return run.space.to_str(run.space.from_str(given))
    except ValueError as err:
        raise ConfigError(
            f"arch={given!r} is neither a final.json file nor an arch: {err}"
        ) from None


def retrain(run: Run) -> None:
    """Train the final arch from scratch with the ``retrain`` recipe; writes ``retrain.json``
    (and ``retrain/``: checkpoints and logs). A killed retraining resumes from its last.ckpt."""
    cfg = run.cfg
    recipe = OmegaConf.to_container(cfg.retrain, resolve=True)
    arch = retrain_arch(run)
    data = RetrainDataModule(
        cfg.dataset, recipe["batch_size"], recipe["cutout"], cfg.seed, recipe["val_portion"]
    )
    module = RetrainModule.from_config(cfg.space, arch, data.num_classes, data.in_channels, recipe)
    trainer = build_trainer(cfg, run.dir, subdir=RETRAIN_DIR, max_epochs=recipe["epochs"])
    fit(run, "retraining", trainer, module, data, run.path(RETRAIN_DIR))
    # the DARTS protocol: the last epoch's weights, tested once (every rank joins)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    if not trainer.is_global_zero:
        return
    write_json_atomic(
        run.path(RETRAIN_FILE),
        {
            **run.space.to_json(run.space.from_str(arch)),
            "test_accuracy": 100.0 * float(metrics["test/acc"]),
            "params": sum(p.numel() for p in module.net.net.parameters()),
            "epochs": recipe["epochs"],
            "recipe": recipe,
        },
    )
