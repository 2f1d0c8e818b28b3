"""``Run``: one run directory and the parts its stages share (data, supernet, evaluators,
archive, cost model), each built on first use."""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from nas.config import TRAINING_FREE
from nas.cost import CostModel
from nas.cost.latency import (
    LatencyModel,
    cached_latency,
    latency_file,
    latency_key,
    measure_latency,
)
from nas.data import SearchDataModule
from nas.errors import ConfigError, NasError
from nas.evaluate import OneShotEvaluator, ProxyEvaluator
from nas.evaluate.base import Evaluator
from nas.evaluate.scorer import Component, ScorerEvaluator, reference_stats, scorer_source
from nas.evolution import Archive
from nas.evolution.nsga2 import Costs
from nas.evolution.progress import query_progress
from nas.files import (
    ARCHIVE_FILE,
    FEATURES_FILE,
    FINETUNED_FILE,
    SCORER_FILE,
    SPLITS_FILE,
    SUPERNET_FILE,
)
from nas.io import digest, read_json, write_json_atomic
from nas.pipeline.records import StageRecords, settings
from nas.predictor.encoding import Features
from nas.search import SupernetModule, build_space
from nas.search.checkpoints import module_from_checkpoint
from nas.search.trainer import trains_on_cuda
from nas.spaces import Arch
from nas.split.restriction import Restriction
from nas.split.routed import RoutedEvaluator, route

#: each bounded cost's ``constraints`` key and unit
BOUND_KEYS = {
    "params": ("max_params", "parameters"),
    "flops": ("max_flops", "FLOPs"),
    "latency": ("max_latency_ms", "ms"),
}

#: the stages whose outputs the one-shot scores read (the supernet, fine-tuned, split)
SCORER_INPUTS = ("search", "finetune", "split")
#: the settings of the scores themselves (their batches and reference archs follow the seed)
SCORER_KEYS = ("oneshot", "scorer", "seed")


class Run:
    """One run directory and the parts its stages share, each built on first use."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.dir = Path(cfg.paths.output_dir)
        self.space = build_space(cfg.space)
        #: the process that runs every stage; the other ranks of a multi-process (DDP) run
        #: only join the stages that train (Lightning's launcher sets their rank variables)
        self.rank: int = rank_zero_only.rank
        self.rank_zero = self.rank == 0
        self.records = StageRecords(self.dir)

    def path(self, name: str) -> Path:
        return self.dir / name

    @cached_property
    def device(self) -> torch.device:
        return torch.device("cuda" if trains_on_cuda(self.cfg) else "cpu")

    @cached_property
    def datamodule(self) -> SearchDataModule:
        dm = SearchDataModule(self.cfg.dataset, self.cfg.seed)
        dm.prepare_data()
        dm.setup()
        return dm

    @property
    def supernet_file(self) -> Path:
        """The supernet the evaluators score subnets of: fine-tuned when that stage ran."""
        path = self.path(FINETUNED_FILE)
        return path if path.exists() else self.path(SUPERNET_FILE)

    @cached_property
    def supernet_module(self) -> SupernetModule:
        path = self.supernet_file
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

    @property
    def training_free(self) -> bool:
        """``search=training_free``: no supernet; zero-cost scores alone."""
        return self.cfg.search.strategy == TRAINING_FREE

    @property
    def oneshot_only(self) -> bool:
        """Whether the scorer is the one-shot evaluator alone (source ``oneshot``)."""
        return list(self.cfg.scorer.components) == ["oneshot"]

    @property
    def source(self) -> str:
        """The source of the scores ``sample`` and ``evolve`` archive."""
        return scorer_source(self.cfg.scorer.name, self.cfg.scorer.components)

    @cached_property
    def evaluator(self) -> Evaluator:
        """What ``sample`` and ``evolve`` query: the one-shot evaluator, or a combined scorer
        (``scorer.*``) whose reference statistics are measured once (``scorer.json``)."""
        if self.oneshot_only:
            return self.oneshot_evaluator
        components = [self._component(name) for name in self.cfg.scorer.components]
        return ScorerEvaluator(
            self.space,
            self.cfg.scorer.name,
            components,
            self._reference_stats(components, SCORER_FILE),
            self.cfg.scorer.weights,
        )

    @cached_property
    def predictor_features(self) -> tuple[Features | None, list[str]]:
        """The predictor's per-arch features (``predictor.features``), each standardised
        against the reference archs (``features.json``), and their names."""
        names = list(self.cfg.predictor.features)
        if not names:
            return None, []
        components = [self._component(name) for name in names]
        stats = self._reference_stats(components, FEATURES_FILE)

        def features(archs: Sequence[Arch]) -> torch.Tensor:
            columns = []
            for c in components:
                mean, std = stats[c.name]
                # a degenerate network's -inf is clipped to far below the reference
                columns.append([max((v - mean) / std, -10.0) for v in c.values(archs)])
            return torch.tensor(columns, dtype=torch.float32).T

        return features, names

    def _component(self, name: str) -> Component:
        """The scorer component ``name`` (``oneshot``, ``proxy:<name>``, ``params``, ``flops``)."""
        if name == "oneshot":
            return Component(
                name, lambda archs: [s.value for s in self.oneshot_evaluator.evaluate(archs)]
            )
        if name == "params":
            return Component(name, lambda archs: [self.cost.params(a) for a in archs])
        if name == "flops":
            return Component(name, lambda archs: [self.cost.flops(a) for a in archs])
        proxy = self.proxy_evaluator(name.removeprefix("proxy:"), self.cfg.scorer.images)
        return Component(name, lambda archs: [s.value for s in proxy.evaluate(archs)])

    def _reference_stats(
        self, components: list[Component], file: str
    ) -> dict[str, tuple[float, float]]:
        """The components' spread over ``scorer.reference`` random archs (drawn from the seed),
        measured once and kept in ``file`` with the producer that measured it."""
        path = self.path(file)
        record = read_json(path) if path.exists() else None
        names = [c.name for c in components]
        if (
            record is None
            or record.get("producer") != self.producer
            or list(record["values"]) != names
        ):
            rng = self.rng("scorer-reference")
            archs = [self.space.sample(rng) for _ in range(self.cfg.scorer.reference)]
            record = {
                "producer": self.producer,
                "archs": [self.space.to_str(a) for a in archs],
                "values": {c.name: c.values(archs) for c in components},
            }
            write_json_atomic(path, record)
        try:
            return reference_stats(record["values"])
        except ValueError as err:
            raise ConfigError(str(err)) from None

    @cached_property
    def oneshot_evaluator(self) -> Evaluator:
        """One-shot scores: of the supernet, or routed to the sub-supernets after a split."""
        calib, val = self.oneshot_batches
        o = self.cfg.oneshot
        if self.leaves is None:
            return OneShotEvaluator(
                self.supernet_module.supernet, calib, val, o.metric, o.canonical
            )
        return RoutedEvaluator(
            self.space,
            [
                (r, OneShotEvaluator(m.supernet, calib, val, o.metric, o.canonical))
                for r, m in self.leaves
            ],
        )

    @cached_property
    def prescreen(self) -> ProxyEvaluator | None:
        p = self.cfg.prescreen
        return None if p.proxy is None else self.proxy_evaluator(p.proxy, p.images)

    def proxy_evaluator(self, proxy: str, images: int) -> ProxyEvaluator:
        """Proxy ``proxy`` on standalone networks initialised from the run's seed, all seeing
        the same fixed, unaugmented batch of ``images`` training images."""
        x, y = self.datamodule.fixed_batches("weights", 1, images, seed=self.cfg.seed)[0]
        return ProxyEvaluator(
            self.space,
            proxy,
            x.to(self.device),
            y.to(self.device),
            num_classes=self.datamodule.num_classes,
            seed=self.cfg.seed,
            batch_size=min(images, len(x)),
        )

    @cached_property
    def cost(self) -> CostModel:
        """Parameters and FLOPs of an arch's network as ``retrain`` builds it (the space's
        standalone network): what the constraints bound and ``final.json`` reports."""
        dm = self.datamodule
        image = dm.fixed_batches("weights", 1, 1)[0][0]
        return CostModel(self.space, dm.num_classes, dm.in_channels, image.shape[-1])

    @cached_property
    def latency(self) -> LatencyModel:
        """The latency table of the space's standalone network on the run's device for a batch
        of ``latency.batch_size`` images of the dataset's size (``nas.cost.latency``),
        measured once per device and cached under ``latency.cache_dir``."""
        cfg, dm = self.cfg.latency, self.datamodule
        image = dm.fixed_batches("weights", 1, 1)[0][0]
        x = torch.randn(cfg.batch_size, *image.shape[1:], device=self.device)
        sizes = OmegaConf.to_container(self.cfg.space.get("subnet") or {}, resolve=True)
        space = {"name": self.cfg.space.name, **sizes}  # plain values: digested in the key
        key = latency_key(space, x.shape, dm.num_classes, self.device)
        return cached_latency(
            Path(cfg.cache_dir) / latency_file(key),
            self.space,
            lambda: measure_latency(
                self.space, dm.num_classes, x, key, cfg.warmup, cfg.repeats, cfg.calibration
            ),
        )

    def cost_of(self, name: str, arch: Arch) -> float:
        """``arch``'s ``latency`` (ms), ``params`` or ``flops``; each table is built when its
        cost is first asked for."""
        if name == "latency":
            return self.latency.ms(arch)
        return float(self.cost.params(arch) if name == "params" else self.cost.flops(arch))

    @cached_property
    def costs(self) -> Costs | None:
        """The objectives after ``score`` (``objectives``) of an arch, each minimised;
        ``None`` with the score alone."""
        names = list(self.cfg.objectives[1:])
        return (lambda arch: [self.cost_of(n, arch) for n in names]) if names else None

    @cached_property
    def bounds(self) -> dict[str, float]:
        """``{cost name: its upper bound}`` of the constraints that are set."""
        c = self.cfg.constraints
        limits = {"params": c.max_params, "flops": c.max_flops, "latency": c.max_latency_ms}
        return {name: limit for name, limit in limits.items() if limit is not None}

    def check_constraints(self, draws: int = 2000) -> None:
        """Raise :class:`ConfigError` naming each bound when the constraints admit none of
        ``draws`` random archs of the space (sample and evolve draw at random: such a budget
        would leave them nothing to score), with the least and the median drawn."""
        if not self.bounds:
            return
        rng = random.Random(f"{self.cfg.seed}:constraints")
        archs = [self.space.sample(rng) for _ in range(draws)]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the search starts as without the check
            if any(self.feasible(a) for a in archs):
                return
        where = f" on {self.latency.key['device']}" if "latency" in self.bounds else ""
        parts = []
        for name, limit in self.bounds.items():
            key, unit = BOUND_KEYS[name]
            values = sorted(self.cost_of(name, a) for a in archs)
            parts.append(
                f"constraints.{key}={limit} (least {values[0]:,.3g} {unit}, median "
                f"{values[len(values) // 2]:,.3g})"
            )
        raise ConfigError(
            f"no arch of {draws} random draws of space {self.cfg.space.name!r}{where} meets "
            f"{'; '.join(parts)}: raise the bound"
        )

    def feasible(self, arch: Arch) -> bool:
        return all(self.cost_of(name, arch) <= limit for name, limit in self.bounds.items())

    @cached_property
    def producer(self) -> dict[str, str]:
        """What scores this run's subnets: the supernet checkpoint (and split) and the scorer's
        settings; archive records of another producer are kept in the file but not reused."""
        inputs = {s: self.records.digest_of(s) for s in SCORER_INPUTS}
        return {
            "checkpoint": self.supernet_file.name,
            "scorer": digest({"settings": settings(self.cfg, SCORER_KEYS), "inputs": inputs}),
        }

    @cached_property
    def archive(self) -> Archive:
        return Archive(self.space, self.path(ARCHIVE_FILE), producer=self.producer)

    def scored_entries(self, stage: str | None = None) -> list:
        """The archived scores of this run's scorer (of ``stage``, when given)."""
        return [
            e
            for e in self.archive
            if e.score.source == self.source and (stage is None or e.stage == stage)
        ]

    def queries(self, what: str, total: int, done: int) -> AbstractContextManager[Evaluator]:
        """The scorer behind a progress bar of ``what`` (queries ``done`` of
        ``total``, best score so far), when the trainer shows progress bars."""
        shown = bool(self.cfg.trainer.get("enable_progress_bar", True))
        return query_progress(self.evaluator, what, total, done, enabled=shown)

    def rng(self, stage: str) -> random.Random:
        """The draws of ``stage``: seeded by the run's seed and the stage, so a rerun repeats them."""
        return random.Random(f"{self.cfg.seed}:{stage}")
