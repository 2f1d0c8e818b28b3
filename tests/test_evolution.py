import json
import math
import random
import zlib

import pytest
import torch

from nas.evaluate.base import Cost, Score
from nas.evolution import (
    Archive,
    RefineConfig,
    Tracker,
    random_search,
    refine,
    regularized_evolution,
)
from nas.evolution.nsga2 import nsga2, objectives
from nas.evolution.pareto import hypervolume_2d
from nas.predictor import DeltaPredictor, TrainConfig
from nas.spaces import get_space

SPACE = get_space("nb201")
GOOD = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0}


class ToyEvaluator:
    """Additive score with a ``none`` penalty; records every arch it is asked for."""

    source = "toy"

    def __init__(self) -> None:
        self.space = SPACE
        self.calls: list = []

    def evaluate(self, archs):
        self.calls += archs
        return [
            Score(sum(GOOD.get(op, 0.0) * (e + 1) for e, op in enumerate(a)), "toy", Cost(0.0, 1))
            for a in archs
        ]


def fast_refine(ev, budget, rng, archive=None, **kw):
    return refine(
        ev,
        budget,
        rng,
        lambda s: DeltaPredictor(s, TrainConfig(steps=40, warm_steps=10)),
        archive=archive,
        cfg=RefineConfig(init_size=8, q=4),
        **kw,
    )


def re_search(ev, budget, rng, archive=None, **kw):
    return regularized_evolution(ev, budget, rng, archive, **kw)


def convs(arch) -> tuple[float]:
    """A toy cost against ToyEvaluator's score: the 3x3 convolutions of the cell."""
    return (float(sum(op == "nor_conv_3x3" for op in arch)),)


def nsga2_search(ev, budget, rng, archive=None, **kw):
    return nsga2(ev, convs, budget, rng, archive, population_size=8, **kw)


def pareto_refine(ev, budget, rng, archive=None, **kw):
    return fast_refine(ev, budget, rng, archive, costs=convs, **kw)


SEARCHES = [random_search, re_search, fast_refine, nsga2_search, pareto_refine]


@pytest.mark.parametrize("search", SEARCHES)
def test_budget_no_repeats_and_determinism(search, tmp_path) -> None:
    runs = []
    for k in range(2):
        ev = ToyEvaluator()
        archive = Archive(SPACE, tmp_path / f"a{k}.jsonl")
        run = search(ev, 30, random.Random(5), archive)
        assert len(ev.calls) == 30 == len(set(ev.calls)) == len(run.history) == len(archive)
        runs.append([SPACE.to_str(a) for a in ev.calls])
    assert runs[0] == runs[1]
    assert (tmp_path / "a0.jsonl").read_text() != ""


def test_refine_beats_random_on_additive_score() -> None:
    best = {
        name: s(ToyEvaluator(), 40, random.Random(0)).best()[0].score.value
        for name, s in [("random", random_search), ("refine", fast_refine)]
    }
    assert best["refine"] > best["random"]
    assert best["refine"] >= 55.0  # optimum 63: nor_conv_3x3 everywhere


def test_multi_objective_searches_find_larger_fronts_than_random_search() -> None:
    """Score against 3x3 convolutions: NSGA-II's and the refiner's fronts dominate more than
    random search's in the same budget, summed over seeds (the area above the all-1x1 cell's
    score, 42)."""

    def hypervolume(search) -> float:
        total = 0.0
        for seed in range(4):
            run = search(ToyEvaluator(), 80, random.Random(seed))
            total += hypervolume_2d(objectives(run.history, convs), (-42.0, 7.0))
        return total

    assert hypervolume(nsga2_search) > 1.2 * hypervolume(random_search)
    assert hypervolume(pareto_refine) > 1.2 * hypervolume(random_search)


def test_the_predictor_earns_its_place_in_refine() -> None:
    """The same local search with candidates in random order (no predictor) finds less in
    the same budget, summed over seeds: the predictor's share of refine's result."""

    def best(make) -> float:
        return sum(
            refine(
                ToyEvaluator(), 30, random.Random(seed), make, cfg=RefineConfig(init_size=8, q=2)
            )
            .best()[0]
            .score.value
            for seed in range(4)
        )

    guided = best(lambda s: DeltaPredictor(s, TrainConfig(steps=40, warm_steps=10)))
    assert guided > best(lambda s: None) + 4


def test_smoothed_parents_discount_a_score_the_predictor_does_not_believe() -> None:
    """With ``smooth``, parents rank by a blend of observed and predicted score: an arch
    whose observed score is far above its prediction (a lucky draw) drops behind."""
    from nas.evolution.refine import _parents
    from nas.predictor.base import Prediction

    rng, archs = random.Random(3), []
    while len(archs) < 4:
        arch = SPACE.sample(rng)
        archs += [arch] if arch not in archs else []
    observed = dict(zip(archs, [10.0, 9.0, 8.0, 7.0], strict=True))  # archs[0]: lucky

    class Table:
        source = "toy"
        space = SPACE

        def evaluate(self, given):
            return [Score(observed[a], "toy", Cost(0.0, 1)) for a in given]

    class Sceptic:  # believes every observed score but the lucky one's (predicts 0 there)
        def predict(self, given):
            mean = [0.0 if a == archs[0] else observed[a] for a in given]
            return Prediction(torch.tensor(mean), torch.zeros(len(given)))

    run = Tracker(Table(), 10)
    run.score(archs, stage="init")
    order = [e.arch for e in _parents(run, RefineConfig(), 0, Sceptic())]
    assert order == archs  # by observed score
    order = [e.arch for e in _parents(run, RefineConfig(smooth=0.5), 0, Sceptic())]
    assert order == [*archs[1:], archs[0]]  # lucky: 0.5 * 10 + 0.5 * 0 = 5 < 7


def test_archive_round_trip(tmp_path) -> None:
    path = tmp_path / "archive.jsonl"
    archive = Archive(SPACE, path)
    arch = SPACE.sample(random.Random(0))
    archive.add(arch, Score(91.5, "tabular", Cost(0.25, 1)), "init")
    line = json.loads(path.read_text())
    assert line == {
        "arch": SPACE.to_str(arch),
        "score": 91.5,
        "source": "tabular",
        "cost": {"seconds": 0.25, "queries": 1},
        "stage": "init",
    }
    again = Archive(SPACE, path)
    assert again.entries == archive.entries and again.queries == 1
    with pytest.raises(ValueError, match="already archived"):
        again.add(arch, Score(1.0, "tabular"), "init")


@pytest.mark.parametrize("search", SEARCHES)
def test_resume_replays_without_queries(search, tmp_path) -> None:
    full = ToyEvaluator()
    search(full, 30, random.Random(3), Archive(SPACE, tmp_path / "full.jsonl"))
    path = tmp_path / "resumed.jsonl"
    first = ToyEvaluator()
    search(first, 12, random.Random(3), Archive(SPACE, path))  # a run stopped early
    second = ToyEvaluator()
    search(second, 30, random.Random(3), Archive(SPACE, path))
    assert not set(first.calls) & set(second.calls)
    assert first.calls + second.calls == full.calls
    archived = [e.arch for e in Archive(SPACE, path)]
    assert archived == [e.arch for e in Archive(SPACE, tmp_path / "full.jsonl")]


def test_constraints_filter_every_evaluation() -> None:
    def few_convs(arch) -> bool:
        return sum(op == "nor_conv_3x3" for op in arch) <= 2

    for search in SEARCHES:
        ev = ToyEvaluator()
        search(ev, 20, random.Random(1), feasible=few_convs)
        assert all(few_convs(a) for a in ev.calls)


def test_refine_prescreen_spends_no_budget() -> None:
    ev, cheap = ToyEvaluator(), ToyEvaluator()
    run = fast_refine(ev, 20, random.Random(2), prescreen=cheap)
    assert len(ev.calls) == 20 == len(run.history)
    assert len(cheap.calls) > 20
    assert {e.score.source for e in run.history} == {"toy"}


class FlatEvaluator(ToyEvaluator):
    """The same score for every arch: no query ever improves the best."""

    source = "flat"

    def evaluate(self, archs):
        self.calls += archs
        return [Score(1.0, "flat", Cost(0.0, 1)) for _ in archs]


def flat_refine(ev, budget, restart, archive=None):
    return refine(
        ev,
        budget,
        random.Random(0),
        lambda s: DeltaPredictor(s, TrainConfig(steps=20, warm_steps=5)),
        archive=archive,
        cfg=RefineConfig(init_size=8, q=2, restart=restart, restart_size=5),
    )


def test_refine_restarts_a_stalled_local_search(tmp_path) -> None:
    def stages(restart: int) -> list[str]:
        return [e.stage for e in flat_refine(FlatEvaluator(), 40, restart).history]

    # after `restart` queries without improvement, `restart_size` fresh random archs start anew
    block = ["refine"] * 6 + ["restart"] * 5
    assert stages(6) == ["init"] * 8 + block + block + ["refine"] * 6 + ["restart"] * 4
    assert stages(0) == ["init"] * 8 + ["refine"] * 32
    # a run resumed from its archive replays its restarts and continues like an unbroken one
    full, first, second = FlatEvaluator(), FlatEvaluator(), FlatEvaluator()
    flat_refine(full, 40, 6)
    flat_refine(first, 17, 6, Archive(SPACE, tmp_path / "a.jsonl"))
    flat_refine(second, 40, 6, Archive(SPACE, tmp_path / "a.jsonl"))
    assert first.calls + second.calls == full.calls


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="budget"):
        random_search(ToyEvaluator(), 0, random.Random(0))
    with pytest.raises(ValueError, match="sample_size"):
        regularized_evolution(ToyEvaluator(), 5, random.Random(0), sample_size=20)
    with pytest.raises(ValueError, match=r"refine\.q"):
        RefineConfig(q=0)
    with pytest.raises(ValueError, match=r"refine\.restart"):
        RefineConfig(restart=-1)


def test_archive_keeps_one_score_per_source(tmp_path) -> None:
    path = tmp_path / "archive.jsonl"
    arch, other = SPACE.sample(random.Random(0)), SPACE.sample(random.Random(1))
    archive = Archive(SPACE, path)
    proxy = archive.add(arch, Score(1e9, "proxy:naswot", Cost(0.0, 0)), "prescreen")
    # a search with another evaluator scores the arch anew instead of reusing the proxy score
    ev = ToyEvaluator()
    (toy,) = Tracker(ev, 5, archive).score([arch], stage="refine")
    assert ev.calls == [arch] and toy.score.source == "toy" and toy.score.value < 1e9
    again = Archive(SPACE, path)
    assert again.entries == archive.entries == [proxy, toy]
    assert again.get(arch, "toy") == toy and again.get(arch, "proxy:naswot") == proxy
    assert again.has(arch, "toy") and not again.has(other, "toy")
    assert arch in again and other not in again
    assert again.best() == proxy and again.best("toy") == toy
    # the same source is reused without a query
    ev = ToyEvaluator()
    assert Tracker(ev, 5, again).score([arch], stage="refine") == [toy] and ev.calls == []
    with pytest.raises(ValueError, match="already archived with source 'toy'"):
        again.add(arch, Score(2.0, "toy"), "refine")
    # a file holding one (arch, source) twice is refused, naming the line
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ValueError, match=r"archive\.jsonl:3: .* twice with source 'toy'"):
        Archive(SPACE, path)


class DegenerateEvaluator(ToyEvaluator):
    """The toy score, but ``-inf`` (or NaN) for a ``share`` of archs picked by a hash."""

    source = "degenerate"

    def __init__(self, share: float) -> None:
        super().__init__()
        self.share = share

    def value(self, arch) -> float:
        u = zlib.crc32(SPACE.to_str(arch).encode()) / 2**32
        if u < self.share:
            return math.nan if u < self.share / 4 else -math.inf
        return sum(GOOD.get(op, 0.0) * (e + 1) for e, op in enumerate(arch))

    def evaluate(self, archs):
        self.calls += archs
        return [Score(self.value(a), self.source, Cost(0.0, 1)) for a in archs]


class RecordingPredictor(DeltaPredictor):
    """A delta predictor that keeps the scores of every fit."""

    def __init__(self, space) -> None:
        super().__init__(space, TrainConfig(steps=20, warm_steps=5))
        self.fits: list[list[float]] = []

    def fit(self, archs, scores) -> None:
        self.fits.append(list(scores))
        super().fit(archs, scores)


@pytest.mark.parametrize("share", [0.6, 0.93])
def test_refine_never_learns_from_or_mutates_non_finite_scores(share) -> None:
    ev, predictors = DegenerateEvaluator(share), []

    def make(space) -> RecordingPredictor:
        predictors.append(RecordingPredictor(space))
        return predictors[0]

    cfg = RefineConfig(init_size=8, q=3, restart=12, restart_size=4)
    run = refine(ev, 60, random.Random(0), make, cfg=cfg)
    assert len(run.history) == len(ev.calls) == 60
    finite = [math.isfinite(e.score.value) for e in run.history]
    assert 2 <= sum(finite) < 60 * (1 - share / 2)  # non-finite scores were plentiful
    # (at 93%, the first 34 archs score -inf, and only the 41st is the second finite one)
    fits = predictors[0].fits
    assert fits and all(math.isfinite(v) for fit in fits for v in fit)
    # each refine step mutates a finite-scored arch of its local search (the archs since the
    # last restart), or samples afresh while that holds none
    origin, mutants = 0, 0
    for i, entry in enumerate(run.history):
        if entry.stage == "restart" and run.history[i - 1].stage != "restart":
            origin = i
        parents = [e.arch for e in run.history[origin:i] if math.isfinite(e.score.value)]
        if entry.stage == "refine" and parents:
            assert any(entry.arch in SPACE.neighbours(p) for p in parents), i
            mutants += 1
    assert mutants >= 10


class RecordingRandom(random.Random):
    """Keeps every ``sample`` it draws (the tournaments of regularized evolution)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.samples: list[list] = []

    def sample(self, population, k, **kw):
        out = super().sample(population, k, **kw)
        self.samples.append(out)
        return out


def test_regularized_tournament_ranks_nan_last(monkeypatch) -> None:
    parents = []
    mutate = SPACE.mutate

    def recording_mutate(arch, rng):
        parents.append(arch)
        return mutate(arch, rng)

    monkeypatch.setattr(SPACE, "mutate", recording_mutate)
    rng = RecordingRandom(0)
    regularized_evolution(DegenerateEvaluator(0.6), 80, rng)
    assert len(parents) == len(rng.samples) > 50
    for parent, sample in zip(parents, rng.samples, strict=True):
        finite = [e for e in sample if math.isfinite(e.score.value)]
        if finite:
            assert parent == max(finite, key=lambda e: e.score.value).arch


def test_the_query_progress_bar_counts_queries_and_the_best_score() -> None:
    from nas.evolution.progress import query_progress

    ev = ToyEvaluator()
    with query_progress(ev, "evolve", total=10, completed=3) as shown:
        archs = [SPACE.sample(random.Random(k)) for k in range(4)]
        scores = shown.evaluate(archs)
        task = shown.progress.tasks[0]
        assert task.completed == 7 and task.total == 10
        assert task.fields["best"] == f"{max(s.value for s in scores):.2f}"
    assert scores == ev.evaluate(archs) and shown.source == ev.source
    with query_progress(ev, "evolve", 10, 0, enabled=False) as plain:
        assert plain is ev
