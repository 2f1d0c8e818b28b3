import json
import random

import pytest

from nas.evaluate.base import Cost, Score
from nas.evolution import (
    Archive,
    RefineConfig,
    random_search,
    refine,
    regularized_evolution,
)
from nas.predictor import DeltaPredictor, TrainConfig
from nas.spaces import get_space

SPACE = get_space("nb201")
GOOD = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "skip_connect": 1.0}


class ToyEvaluator:
    """Additive score with a ``none`` penalty; records every arch it is asked for."""

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


SEARCHES = [random_search, re_search, fast_refine]


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
