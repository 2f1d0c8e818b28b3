"""The stages that score: derive (the strategy's arch), sample, evolve, shortlist and export."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from omegaconf import OmegaConf
from pytorch_lightning.loggers import WandbLogger

from nas.errors import ConfigError, NasError
from nas.evaluate.base import Evaluator, seeded_subnet
from nas.evaluate.brief import brief_training
from nas.evolution import (
    RefineConfig,
    Tracker,
    nsga2,
    random_search,
    refine,
    regularized_evolution,
    sample_around,
)
from nas.evolution.archive import Entry, finite
from nas.evolution.nsga2 import objectives
from nas.evolution.pareto import knee, non_dominated_fronts
from nas.export import export_final
from nas.files import ARCHIVE_FILE, DERIVED_FILE, PREDICTOR_FILE, SHORTLIST_FILE
from nas.io import read_json, write_json_atomic
from nas.pipeline.state import Run
from nas.predictor import build_predictor, save_predictor
from nas.search import build_loggers
from nas.spaces import Arch

SAMPLE_STAGE = "sample"

log = logging.getLogger(__name__)


def derived_arch(run: Run, record: dict) -> Arch | None:
    """The arch of a ``derived.json`` record, validated by the space; ``None`` for a strategy
    without architecture parameters, which derives none."""
    return None if record["arch"] is None else run.space.from_json(record)


def derive(run: Run) -> None:
    """Mark the last epoch's derived architecture final (validating it against the space)."""
    record = read_json(run.path(DERIVED_FILE))
    arch = derived_arch(run, record)
    canonical = {} if arch is None else run.space.to_json(arch)
    write_json_atomic(run.path(DERIVED_FILE), {**record, **canonical, "final": True})


def sample(run: Run) -> None:
    """Score K subnets one-shot: the derived arch and its neighbours (when the strategy derives
    one), then random archs, each the best of ``sample.prescreen_pool`` by the prescreen
    proxy when one is set (``archive.jsonl``)."""
    cfg = run.cfg.sample
    derived = None if run.training_free else derived_arch(run, read_json(run.path(DERIVED_FILE)))
    done = len(run.scored_entries(SAMPLE_STAGE))
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


def evolve(run: Run) -> None:
    """Search from the sampled subnets with ``evolution.algorithm``; every evaluation archived.
    With several ``objectives`` the refiner selects by NSGA-II's order and ranks candidates
    by predicted hypervolume gain, and ``regularized`` runs NSGA-II (its multi-objective form)."""
    cfg = run.cfg.evolution
    init = [e.arch for e in run.scored_entries(SAMPLE_STAGE)]
    rng = run.rng("evolve")
    budget = len(init) + cfg.budget  # the sampled archs are replayed from the archive for free
    done = len(run.scored_entries()) - len(init)
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
            predictor = build_predictor(
                p.kind, run.space, p.train, *run.predictor_features, **options
            )
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
            costs=run.costs,
        )
        scored = finite(tracker.history)
        if len(scored) >= 2:  # the predictor's final fit, on everything the search scored
            archs, scores = [e.arch for e in scored], [e.score.value for e in scored]
            predictor.fit(archs, scores)
            save_predictor(run.path(PREDICTOR_FILE), predictor, archs, scores, options)
    elif cfg.algorithm == "regularized" and run.costs is not None:
        nsga2(
            evaluator,
            run.costs,
            budget,
            rng,
            run.archive,
            run.feasible,
            cfg.population_size,
            init=init,
        )
    elif cfg.algorithm == "regularized":
        regularized_evolution(
            evaluator,
            budget,
            rng,
            run.archive,
            run.feasible,
            cfg.population_size,
            cfg.tournament_size,
            init=init,
        )
    elif cfg.algorithm == "random":
        random_search(evaluator, budget, rng, run.archive, run.feasible, init=init)
    else:
        raise ConfigError(
            f"unknown evolution.algorithm {cfg.algorithm!r}; known: refine, regularized, random"
        )


def feasible_entries(run: Run) -> list[Entry]:
    """The archived scores of this run's scorer whose archs meet the constraints."""
    entries = [e for e in run.scored_entries() if run.feasible(e.arch)]
    if not entries:
        raise NasError(
            f"{run.path(ARCHIVE_FILE)} holds no score of {run.source}: run the sample stage"
        )
    return entries


def shortlist_candidates(run: Run) -> list[Entry]:
    """The ``shortlist.size`` best distinct feasible archs by score, best first."""
    best: dict[str, Entry] = {}
    for e in sorted(feasible_entries(run), key=lambda e: e.rank, reverse=True):
        best.setdefault(run.space.to_str(e.arch), e)
    return list(best.values())[: run.cfg.shortlist.size]


def shortlist(run: Run) -> None:
    """Train the best-scored archs briefly as standalone networks (``shortlist.*``: steps of
    SGD on the weights half, seeded initialisation) and rate them on the arch half
    (``shortlist.json``, rewritten after each arch so that a killed run keeps what it trained);
    export takes the most accurate."""
    cfg = run.cfg.shortlist
    settings = OmegaConf.to_container(cfg)
    path = run.path(SHORTLIST_FILE)
    old = read_json(path) if path.exists() else None
    done = {r["arch"]: r for r in old["results"]} if old and old["settings"] == settings else {}
    dm, device = run.datamodule, run.device
    train = [
        (x.to(device), y.to(device))
        for x, y in dm.fixed_batches("weights", cfg.steps, cfg.batch_size, seed=run.cfg.seed)
    ]
    val = [(x.to(device), y.to(device)) for x, y in dm.fixed_batches("arch", 1, cfg.val_images)]
    candidates = shortlist_candidates(run)
    results = []
    for i, entry in enumerate(candidates, 1):
        key = run.space.to_str(entry.arch)
        if key not in done:
            net = seeded_subnet(run.space, entry.arch, dm.num_classes, dm.in_channels, run.cfg.seed)
            r = brief_training(net.to(device), train, val, cfg.steps, cfg.lr, cfg.weight_decay)
            done[key] = {
                "arch": key,
                "score": entry.score.value,
                "accuracy": r.accuracy,
                "loss": r.loss,
                "seconds": r.seconds,
            }
        results.append(done[key])
        log.info(
            "shortlist %d/%d: %s: %.1f%% after %d steps (score %.3f)",
            i, len(candidates), key, done[key]["accuracy"], cfg.steps, entry.score.value,
        )  # fmt: skip
        write_json_atomic(path, {"settings": settings, "results": results, "done": False})
    winner = max(results, key=lambda r: (r["accuracy"], -r["loss"]))
    write_json_atomic(
        path, {"settings": settings, "results": results, "winner": winner["arch"], "done": True}
    )


def export(run: Run) -> None:
    """Write the chosen arch as ``final.json``, ``subnet.pt``, ``subnet.onnx``, ``summary.md``,
    ``plots/`` (a training-free run has no weights: no ``subnet.*``). The choice: the
    shortlist's winner when that stage ran, else the best scored; with several ``objectives``,
    ``final.json`` also holds the front of the feasible archs (and ``plots/pareto.png``), and
    ``export.choice=knee`` takes the front's knee."""
    entries = feasible_entries(run)
    dm = run.datamodule
    best = max(entries, key=lambda e: e.rank)
    short = shortlist_winner(run)
    if short is not None:
        best = max(
            (e for e in entries if run.space.to_str(e.arch) == short["arch"]),
            key=lambda e: e.rank,
        )
    front = front_entries(run, entries)
    if front and run.cfg.export.choice == "knee":
        best = front[knee(objectives(front, run.costs)[:, :2])]
    extra = {"objectives": list(run.cfg.objectives), "choice": run.cfg.export.choice}
    if "latency" in run.bounds or "latency" in run.cfg.objectives:
        extra["latency_ms"] = run.cost_of("latency", best.arch)
        extra["latency_device"] = run.latency.key["device"]
    if front:
        extra["front"] = [_front_record(run, e) for e in front]
    module = None if run.training_free else run.supernet_for(best.arch)
    record = export_final(
        run.dir,
        run.space,
        OmegaConf.to_container(run.cfg.space) if module is None else module.hparams["space"],
        None if module is None else module.supernet,
        entries,
        best,
        algorithm=run.cfg.evolution.algorithm,
        calib=[x for x, _ in run.oneshot_batches[0]],
        test=dm.test_dataloader(),
        num_classes=dm.num_classes,
        in_channels=dm.in_channels,
        cost=run.cost,
        onnx=run.cfg.export.onnx,
        plots=run.cfg.export.plots,
        shortlist=short,
        extra=extra,
        pareto=_pareto_axis(run),
    )
    for logger in build_loggers(run.cfg):
        if isinstance(logger, WandbLogger):
            from nas.export.wandb_report import report_to_wandb

            report_to_wandb(logger, run.dir, run.space, entries, record)


def front_entries(run: Run, entries: list[Entry]) -> list[Entry]:
    """The distinct feasible archs no other beats on every objective, by the first cost
    objective (fastest first); empty with the score alone."""
    if run.costs is None:
        return []
    distinct: dict[str, Entry] = {}
    for e in sorted(entries, key=lambda e: e.rank, reverse=True):
        distinct.setdefault(run.space.to_str(e.arch), e)
    unique = list(distinct.values())
    front = [unique[i] for i in non_dominated_fronts(objectives(unique, run.costs))[0]]
    first = run.cfg.objectives[1]
    return sorted(front, key=lambda e: (run.cost_of(first, e.arch), -e.rank))


def _front_record(run: Run, e: Entry) -> dict:
    record = {
        "arch": run.space.to_str(e.arch),
        "score": e.score.value,
        "params": run.cost.params(e.arch),
        "flops": run.cost.flops(e.arch),
    }
    if "latency" in run.cfg.objectives:
        record["latency_ms"] = run.cost_of("latency", e.arch)
    return record


def _pareto_axis(run: Run) -> tuple[str, Callable[[Arch], float]] | None:
    """The first cost objective's name and value, the x axis of ``plots/pareto.png``."""
    if run.costs is None:
        return None
    first = run.cfg.objectives[1]
    return first, lambda arch: run.cost_of(first, arch)


def shortlist_winner(run: Run) -> dict | None:
    """The shortlist stage's record of its winner (with ``steps`` and ``candidates``), or
    ``None`` when the stage does not apply."""
    if not shortlist_applies(run):
        return None
    path = run.path(SHORTLIST_FILE)
    record = read_json(path) if path.exists() else None
    if record is None or not record["done"]:
        raise NasError(f"{path} is missing or unfinished: run the shortlist stage first")
    winner = next(r for r in record["results"] if r["arch"] == record["winner"])
    return {**winner, "steps": record["settings"]["steps"], "candidates": len(record["results"])}


def shortlist_applies(run: Run) -> bool:
    """Whether the shortlist stage runs: ``shortlist.size`` > 0, it is among ``stages`` and
    export takes the best arch (``export.choice=best``: the knee of a front is not the
    shortlist's)."""
    return (
        run.cfg.shortlist.size > 0
        and "shortlist" in run.cfg.stages
        and run.cfg.export.choice == "best"
    )
