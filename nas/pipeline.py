"""The stages of one run and the files through which they meet (DESIGN.md, "The flow").

``search`` trains the supernet (``checkpoints/``, ``alphas.jsonl``, ``derived.json``,
``supernet.ckpt``); ``derive`` marks the derived arch final; ``finetune`` trains the supernet's
single paths (``finetuned.ckpt``), so that one-shot scores rate trained paths; ``sample``
scores K subnets around the derived arch one-shot (``archive.jsonl``); ``evolve`` searches from the archive with the
predictor-guided refiner (``archive.jsonl``, ``predictor.pt``); ``export`` writes the final
model and report (``final.json``, ``subnet.pt``, ``subnet.onnx``, ``summary.md``, ``plots/``);
``retrain`` trains the final arch from scratch (``retrain.json``). ``stages`` picks which run.

Each stage reads earlier stages' files and is skipped when its own output is complete, so
rerunning a killed run's command continues where it stopped; archived subnets are never
scored again (the searches replay them from the archive). Each stage's work is a call into
its part; this module only wires them.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from nas.config import WeightOptimConfig, check_config
from nas.data import RetrainDataModule, SearchDataModule
from nas.errors import ConfigError, NasError
from nas.evaluate import OneShotEvaluator, ProxyEvaluator
from nas.evaluate.base import Evaluator
from nas.evolution import (
    Archive,
    RefineConfig,
    Tracker,
    random_search,
    refine,
    regularized_evolution,
    sample_around,
)
from nas.evolution.archive import finite
from nas.evolution.progress import query_progress
from nas.export import CostModel, export_final
from nas.files import (
    ARCHIVE_FILE,
    CHECKPOINT_DIR,
    DERIVED_FILE,
    FINAL_FILE,
    FINETUNE_DIR,
    FINETUNED_FILE,
    PREDICTOR_FILE,
    RETRAIN_DIR,
    RETRAIN_FILE,
    SPLIT_DIR,
    SPLITS_FILE,
    SUPERNET_FILE,
)
from nas.io import read_json, write_json_atomic
from nas.memory import PeakMemory
from nas.predictor import build_predictor, save_predictor
from nas.retrain import RetrainModule
from nas.search import (
    ArchitectureWriter,
    SupernetModule,
    build_loggers,
    build_space,
    build_trainer,
)
from nas.search.checkpoints import check_resumable, module_from_checkpoint
from nas.spaces import Arch
from nas.split.measure import choose_split
from nas.split.restriction import Restriction
from nas.split.routed import RoutedEvaluator, route

log = logging.getLogger(__name__)

SAMPLE_STAGE = "sample"


@dataclass
class RunResult:
    """What a run's files say at its end (``None``: that stage's file is absent)."""

    run_dir: Path
    space: str
    derived: dict[str, Any] | None = None  # derived.json
    final: dict[str, Any] | None = None  # final.json
    retrain: dict[str, Any] | None = None  # retrain.json

    @property
    def arch(self) -> str | None:
        """The final arch when export ran, else the derived one."""
        for record in (self.final, self.derived, self.retrain):
            if record is not None:
                return record["arch"]
        return None


class Run:
    """One run directory and the parts its stages share, each built on first use."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.paths.output_dir)
        self.space = build_space(cfg.space)
        #: the process that runs every stage; the other ranks of a multi-process (DDP) run
        #: only join the stages that train (Lightning's launcher sets their rank variables)
        self.rank_zero = rank_zero_only.rank == 0

    def path(self, name: str) -> Path:
        return self.dir / name

    @cached_property
    def device(self) -> torch.device:
        accelerator = str(self.cfg.trainer.accelerator)
        cuda = accelerator in ("gpu", "cuda") or (
            accelerator == "auto" and torch.cuda.is_available()
        )
        return torch.device("cuda" if cuda else "cpu")

    @cached_property
    def datamodule(self) -> SearchDataModule:
        dm = SearchDataModule(self.cfg.dataset, self.cfg.seed)
        dm.prepare_data()
        dm.setup()
        return dm

    @cached_property
    def supernet_module(self) -> SupernetModule:
        """The supernet the evaluators score subnets of: fine-tuned when that stage ran."""
        path = self.path(FINETUNED_FILE)
        if not path.exists():
            path = self.path(SUPERNET_FILE)
        if not path.exists():
            raise NasError(f"{path} is missing: run the search stage first (stages=[search, ...])")
        return module_from_checkpoint(SupernetModule, path).to(self.device).eval()

    @cached_property
    def oneshot_batches(self) -> tuple[list, list]:
        """The one-shot evaluator's calibration and validation batches."""
        o = self.cfg.oneshot
        dm = self.datamodule
        calib = dm.fixed_batches("weights", o.calib_batches, o.batch_size, seed=self.cfg.seed)
        return calib, dm.fixed_batches("arch", o.val_batches, o.batch_size)

    @cached_property
    def leaves(self) -> list[tuple[Restriction, SupernetModule]] | None:
        """The sub-supernets of a finished split and their restrictions (None: no split)."""
        path = self.path(SPLITS_FILE)
        if self.cfg.split.method is None or not path.exists():
            return None
        return [
            (
                Restriction.from_json(self.space, leaf["allowed"]),
                self.leaf_module(leaf).to(self.device).eval(),
            )
            for leaf in read_json(path)["leaves"]
        ]

    def leaf_module(self, leaf: dict[str, Any]) -> SupernetModule:
        """A split's sub-supernet (the unsplit one for the root, whose ``file`` is None)."""
        if leaf["file"] is None:
            return self.supernet_module
        return module_from_checkpoint(SupernetModule, self.path(leaf["file"]))

    def supernet_for(self, arch: Arch) -> SupernetModule:
        """The supernet whose weights ``arch`` inherits: its sub-supernet after a split."""
        if self.leaves is None:
            return self.supernet_module
        return self.leaves[route([r for r, _ in self.leaves], arch)][1]

    @cached_property
    def evaluator(self) -> Evaluator:
        """One-shot scores: of the supernet, or routed to the sub-supernets after a split."""
        calib, val = self.oneshot_batches
        if self.leaves is None:
            return OneShotEvaluator(self.supernet_module.supernet, calib, val)
        return RoutedEvaluator(
            self.space, [(r, OneShotEvaluator(m.supernet, calib, val)) for r, m in self.leaves]
        )

    @cached_property
    def prescreen(self) -> ProxyEvaluator | None:
        p = self.cfg.prescreen
        if p.proxy is None:
            return None
        x, y = self.datamodule.fixed_batches("weights", 1, p.images, seed=self.cfg.seed)[0]
        return ProxyEvaluator(
            self.space,
            p.proxy,
            x.to(self.device),
            y.to(self.device),
            num_classes=self.datamodule.num_classes,
            seed=self.cfg.seed,
        )

    @cached_property
    def cost(self) -> CostModel:
        dm = self.datamodule
        image = dm.fixed_batches("weights", 1, 1)[0][0]
        return CostModel(
            self.space,
            dm.num_classes,
            dm.in_channels,
            image.shape[-1],
            self.supernet_module.hparams["space"].get("supernet") or {},
        )

    def feasible(self, arch: Arch) -> bool:
        c = self.cfg.constraints
        if c.max_params is not None and self.cost.params(arch) > c.max_params:
            return False
        return c.max_flops is None or self.cost.flops(arch) <= c.max_flops

    @cached_property
    def archive(self) -> Archive:
        return Archive(self.space, self.path(ARCHIVE_FILE))

    def oneshot_entries(self, stage: str | None = None) -> list:
        return [
            e
            for e in self.archive
            if e.score.source == "oneshot" and (stage is None or e.stage == stage)
        ]

    def queries(self, what: str, total: int, done: int) -> AbstractContextManager[Evaluator]:
        """The one-shot evaluator behind a progress bar of ``what`` (queries ``done`` of
        ``total``, best score so far), when the trainer shows progress bars."""
        shown = bool(self.cfg.trainer.get("enable_progress_bar", True))
        return query_progress(self.evaluator, what, total, done, enabled=shown)

    def rng(self, stage: str) -> random.Random:
        """The draws of ``stage``: seeded by the run's seed and the stage, so a rerun repeats them."""
        return random.Random(f"{self.cfg.seed}:{stage}")


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


# -- stages ---------------------------------------------------------------------------------
def search_done(run: Run) -> bool:
    return run.path(SUPERNET_FILE).exists() and run.path(DERIVED_FILE).exists()


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


def derive_done(run: Run) -> bool:
    path = run.path(DERIVED_FILE)
    return path.exists() and read_json(path).get("final", False)


def derive(run: Run) -> None:
    """Mark the last epoch's derived architecture final (validating it against the space)."""
    derived = read_json(run.path(DERIVED_FILE))
    arch = run.space.from_json(derived)
    write_json_atomic(
        run.path(DERIVED_FILE),
        {**run.space.to_json(arch), "epoch": derived["epoch"], "final": True},
    )


def finetune_done(run: Run) -> bool:
    return run.cfg.finetune.epochs == 0 or run.path(FINETUNED_FILE).exists()


def finetune(run: Run) -> None:
    """Train the searched supernet's weights on single paths (``search=spos`` with
    ``finetune.sampler``) for ``finetune.epochs``; writes ``finetuned.ckpt`` (and
    ``finetune/``: its checkpoints and logs)."""
    f = run.cfg.finetune
    searched = module_from_checkpoint(SupernetModule, run.path(SUPERNET_FILE))
    train_single_paths(run, searched, f.epochs, f.sampler, FINETUNE_DIR, FINETUNED_FILE)


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
    ``epochs`` in ``run_dir/subdir``, resumably; write the result to ``run_dir/out``."""
    cfg, f = run.cfg, run.cfg.finetune
    search = {
        **start.hparams["search"],
        "strategy": "spos",
        "sampler": sampler,
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
    trainer = build_trainer(cfg, run.dir, subdir=subdir, max_epochs=epochs)
    data = SearchDataModule(cfg.dataset, cfg.seed)
    fit(run, f"single-path training ({subdir})", trainer, module, data, run.path(subdir))
    trainer.save_checkpoint(run.path(out), weights_only=False)


def split_done(run: Run) -> bool:
    path = run.path(SPLITS_FILE)
    return run.cfg.split.method is None or (path.exists() and read_json(path)["done"])


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


def sample_done(run: Run) -> bool:
    return len(run.oneshot_entries(SAMPLE_STAGE)) >= run.cfg.sample.size


def sample(run: Run) -> None:
    """Score K subnets one-shot: the derived arch, its neighbours, random archs (``archive.jsonl``)."""
    cfg = run.cfg.sample
    derived = run.space.from_json(read_json(run.path(DERIVED_FILE)))
    done = len(run.oneshot_entries(SAMPLE_STAGE))
    with run.queries("sample", cfg.size, done) as evaluator:
        sample_around(
            Tracker(evaluator, cfg.size, run.archive, run.feasible),
            derived,
            cfg.neighbours,
            run.rng(SAMPLE_STAGE),
            run.prescreen,
            cfg.prescreen_pool,
            stage=SAMPLE_STAGE,
        )


def evolve_done(run: Run) -> bool:
    sampled = len(run.oneshot_entries(SAMPLE_STAGE))
    return (run.path(PREDICTOR_FILE).exists() or run.cfg.evolution.algorithm != "refine") and len(
        run.oneshot_entries()
    ) >= sampled + run.cfg.evolution.budget


def evolve(run: Run) -> None:
    """Search from the sampled subnets with ``evolution.algorithm``; every evaluation archived."""
    cfg = run.cfg.evolution
    init = [e.arch for e in run.oneshot_entries(SAMPLE_STAGE)]
    rng = run.rng("evolve")
    budget = len(init) + cfg.budget
    done = len(run.oneshot_entries()) - len(init)
    with run.queries(f"evolve ({cfg.algorithm})", cfg.budget, done) as evaluator:
        _evolve(run, evaluator, init, rng, budget)


def _evolve(
    run: Run, evaluator: Evaluator, init: list[Arch], rng: random.Random, budget: int
) -> None:
    """``evolution.algorithm`` from ``init`` with ``evaluator`` until ``budget`` archs are scored."""
    cfg, p = run.cfg.evolution, run.cfg.predictor
    if cfg.algorithm == "refine":
        options = {
            "decay": p.decay,
            "max_pairs": p.max_pairs,
            "k_nearest": p.k_nearest,
        }
        try:
            predictor = build_predictor(p.kind, run.space, p.train, **options)
            refine_cfg = RefineConfig(**cfg.refine)
        except ValueError as err:
            raise ConfigError(f"{err} (predictor.* / evolution.refine.*)") from None
        tracker = refine(
            evaluator,
            budget,
            rng,
            lambda space: predictor,
            run.archive,
            run.feasible,
            refine_cfg,
            init=init,
            prescreen=run.prescreen,
        )
        scored = finite(tracker.history)
        if len(scored) >= 2:  # the predictor's final fit, on everything the search scored
            archs, scores = [e.arch for e in scored], [e.score.value for e in scored]
            predictor.fit(archs, scores)
            save_predictor(run.path(PREDICTOR_FILE), predictor, archs, scores, options)
    elif cfg.algorithm == "regularized":
        regularized_evolution(
            evaluator,
            budget,
            rng,
            run.archive,
            run.feasible,
            cfg.population_size,
            cfg.tournament_size,
        )
    elif cfg.algorithm == "random":
        random_search(evaluator, budget, rng, run.archive, run.feasible)
    else:
        raise ConfigError(
            f"unknown evolution.algorithm {cfg.algorithm!r}; known: refine, regularized, random"
        )


def export_done(run: Run) -> bool:
    return run.path(FINAL_FILE).exists()


def export(run: Run) -> None:
    """Write the best one-shot arch as ``final.json``, ``subnet.pt``, ``subnet.onnx``, ``summary.md``, ``plots/``."""
    entries = [e for e in run.oneshot_entries() if run.feasible(e.arch)]
    if not entries:
        raise NasError(f"{run.path(ARCHIVE_FILE)} holds no one-shot score: run the sample stage")
    dm = run.datamodule
    best = max(entries, key=lambda e: e.rank)
    module = run.supernet_for(best.arch)
    record = export_final(
        run.dir,
        run.space,
        module.hparams["space"],
        module.supernet,
        entries,
        best,
        algorithm=run.cfg.evolution.algorithm,
        calib=[x for x, _ in run.oneshot_batches[0]],
        test=dm.test_dataloader(),
        num_classes=dm.num_classes,
        in_channels=dm.in_channels,
        params_of=run.cost.params,
        onnx=run.cfg.export.onnx,
        plots=run.cfg.export.plots,
    )
    for logger in build_loggers(run.cfg):
        if isinstance(logger, WandbLogger):
            from nas.export.wandb_report import report_to_wandb

            report_to_wandb(logger, run.dir, run.space, entries, record)


def retrain_done(run: Run) -> bool:
    return run.path(RETRAIN_FILE).exists()


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
    data = RetrainDataModule(cfg.dataset, recipe["batch_size"], recipe["cutout"], cfg.seed)
    module = RetrainModule(
        space=OmegaConf.to_container(cfg.space, resolve=True),
        arch=arch,
        num_classes=data.num_classes,
        in_channels=data.in_channels,
        recipe=recipe,
    )
    trainer = build_trainer(cfg, run.dir, subdir=RETRAIN_DIR, max_epochs=recipe["epochs"])
    fit(run, "retraining", trainer, module, data, run.path(RETRAIN_DIR))
    (metrics,) = trainer.validate(module, datamodule=data, verbose=False)  # every rank joins
    if not trainer.is_global_zero:
        return
    write_json_atomic(
        run.path(RETRAIN_FILE),
        {
            **run.space.to_json(run.space.from_str(arch)),
            "test_accuracy": 100.0 * float(metrics["val/acc"]),
            "params": sum(p.numel() for p in module.net.net.parameters()),
            "epochs": recipe["epochs"],
            "recipe": recipe,
        },
    )


#: the stages every DDP rank joins; the others run on rank zero alone
TRAINING_STAGES = ("search", "finetune", "retrain")

STAGES = {
    "search": (search, search_done),
    "derive": (derive, derive_done),
    "finetune": (finetune, finetune_done),
    "split": (split, split_done),
    "sample": (sample, sample_done),
    "evolve": (evolve, evolve_done),
    "export": (export, export_done),
    "retrain": (retrain, retrain_done),
}


def finish_wandb() -> None:
    """Close the W&B run the stages logged to, if one is open, so that its files are whole."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def run(cfg: DictConfig) -> RunResult | None:
    """Run the configured stages of one search in ``cfg.paths.output_dir``.

    Returns the result on the process that ran the later stages; ``None`` on the other ranks
    of a multi-process (DDP) search, which only train.
    """
    check_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.resume and any(
        (run_dir / f).exists() for f in (DERIVED_FILE, SUPERNET_FILE, CHECKPOINT_DIR, ARCHIVE_FILE)
    ):
        raise ConfigError(
            f"run directory {run_dir} already holds results and resume=false; set resume=true "
            f"to continue it or choose a new hydra.run.dir"
        )
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    state = Run(cfg)
    try:
        for name in cfg.stages:
            work, done = STAGES[name]
            if not state.rank_zero and name not in TRAINING_STAGES:
                continue
            if cfg.resume and done(state):
                log.info("%s stage already done in %s; skipping", name, run_dir)
                continue
            log.info("%s stage", name)
            work(state)
    finally:
        finish_wandb()
    if not state.rank_zero:
        return None
    files = {}
    for key, name in (("derived", DERIVED_FILE), ("final", FINAL_FILE), ("retrain", RETRAIN_FILE)):
        path = state.path(name)
        files[key] = read_json(path) if path.exists() else None
    return RunResult(run_dir, state.space.name, **files)
