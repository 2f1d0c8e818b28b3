"""Scorers: standardised components combined into one score, archived with the score;
``scorer=proxy`` and ``search=training_free`` through the pipeline."""

import math
import random

import pytest
import torch

from nas.errors import ConfigError
from nas.evaluate.scorer import Component, ScorerEvaluator, combine, reference_stats
from nas.evolution import Archive
from nas.files import ARCHIVE_FILE, FEATURES_FILE, PREDICTOR_FILE, SCORER_FILE, SUPERNET_FILE
from nas.io import read_json, read_jsonl
from nas.pipeline import run
from nas.spaces import get_space

TRAINING_FREE = (
    "search=training_free",
    "stages=[sample,evolve,export]",
    "sample.size=6",
    "evolution.budget=4",
    "evolution.refine.q=2",
    "predictor.train.steps=20",
    "scorer.reference=8",
    "scorer.images=16",
    "export.plots=false",
)


def test_components_are_standardised_against_the_reference_and_averaged():
    stats = reference_stats({"a": [1.0, 3.0], "b": [10.0, 10.0, 40.0, -math.inf]})
    assert stats["a"] == pytest.approx((2.0, math.sqrt(2)))
    assert stats["b"] == pytest.approx((20.0, math.sqrt(300)))  # the -inf is left out
    value = combine({"a": 3.0, "b": 40.0}, stats, {})
    assert value == pytest.approx((1 / math.sqrt(2) + 20 / math.sqrt(300)) / 2)
    weighted = combine({"a": 3.0, "b": 40.0}, stats, {"a": 3.0})
    assert weighted == pytest.approx((3 / math.sqrt(2) + 20 / math.sqrt(300)) / 4)
    assert combine({"a": 3.0, "b": -math.inf}, stats, {}) == -math.inf
    with pytest.raises(ValueError, match=r"scorer\.reference"):
        reference_stats({"flat": [5.0, 5.0, 5.0]})


def test_archived_components_rescore_any_weighting_without_measuring(tmp_path):
    space = get_space("nb201")
    archs = [space.sample(random.Random(i)) for i in range(6)]
    measured: list = []

    def measure(name, f):
        def values(batch):
            measured.extend(batch)
            return [f(a) for a in batch]

        return Component(name, values)

    parts = [
        measure("proxy:synflow", lambda a: 1.0 + space.to_str(a).count("conv")),  # log scale
        measure("proxy:naswot", lambda a: float(space.to_str(a).count("skip"))),
    ]
    stats = reference_stats({c.name: c.values(archs) for c in parts})
    archive = Archive(space, tmp_path / ARCHIVE_FILE)
    scores = ScorerEvaluator(space, "proxy", parts, stats).evaluate(archs)
    for arch, score in zip(archs, scores, strict=True):
        assert score.source == "scorer:proxy"
        assert score.components["proxy:synflow"] == pytest.approx(
            math.log(1.0 + space.to_str(arch).count("conv"))
        )
        archive.add(arch, score, "sample")
    measured.clear()
    weights = {"proxy:naswot": 0.0}
    again = Archive(space, tmp_path / ARCHIVE_FILE)  # read back from the file
    rescored = [combine(e.score.components, stats, weights) for e in again]
    assert measured == []
    direct = ScorerEvaluator(space, "proxy", parts, stats, weights).evaluate(archs)
    assert rescored == pytest.approx([s.value for s in direct])
    with pytest.raises(ValueError, match=r"scorer\.weights"):
        ScorerEvaluator(space, "proxy", parts, stats, {"flops": 1.0})


def test_the_proxy_scorer_archives_its_components_and_exports_the_best(tiny_cfg, tmp_path):
    result = run(
        tiny_cfg(
            "space=nb201",
            "scorer=proxy",
            "scorer.components=[proxy:synflow,proxy:naswot,params]",
            "scorer.reference=8",
            "scorer.images=16",
            "stages=[search,derive,sample,evolve,export]",
            "sample.size=5",
            "evolution.budget=3",
            "evolution.refine.q=2",
            "predictor.train.steps=20",
            "export.plots=false",
        )
    )
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert len(records) == 8 and {r["source"] for r in records} == {"scorer:proxy"}
    parts = {"proxy:synflow", "proxy:naswot", "params"}
    assert all(set(r["components"]) == parts for r in records)
    reference = read_json(tmp_path / SCORER_FILE)
    stats = reference_stats(reference["values"])
    for r in records:  # every score is its components' standardised mean
        assert r["score"] == pytest.approx(combine(r["components"], stats, {}))
    final = result.final
    best = max(records, key=lambda r: r["score"])
    assert final["arch"] == best["arch"] and final["score"] == best["score"]
    assert final["scorer"] == "scorer:proxy" and final["oneshot_score"] is None
    assert final["components"] == best["components"]
    assert final["test_accuracy"] is not None  # inherited from the searched supernet


def test_the_hybrid_scorer_keeps_the_oneshot_accuracy_beside_the_proxies(
    finished_runs, tiny_cfg, run_copy
):
    """``scorer=hybrid`` on a searched supernet: each record's ``oneshot`` component is the
    one-shot evaluator's accuracy of that arch, and ``final.json`` reports it."""
    from nas.pipeline.state import Run

    tmp = run_copy()  # a finished tiny search, scored anew by the hybrid scorer
    hybrid = (
        "scorer=hybrid",
        "scorer.reference=4",
        "scorer.images=16",
        "stages=[search,derive,sample,evolve,export]",
        "sample.size=3",
        "evolution.budget=2",
        "evolution.refine.q=2",
        "predictor.train.steps=20",
        "export.plots=false",
        "export.onnx=false",
    )
    final = run(tiny_cfg(*hybrid)).final
    records = list(read_jsonl(tmp / ARCHIVE_FILE))
    assert {r["source"] for r in records} == {"scorer:hybrid"} and len(records) == 5
    state = Run(tiny_cfg(*hybrid))
    archs = [state.space.from_str(r["arch"]) for r in records]
    accuracy = [s.value for s in state.oneshot_evaluator.evaluate(archs)]
    assert [r["components"]["oneshot"] for r in records] == pytest.approx(accuracy)
    assert final["oneshot_score"] == final["components"]["oneshot"]
    assert set(final["components"]) == {"oneshot", "proxy:synflow", "proxy:naswot", "params"}


def test_training_free_search_trains_nothing_and_exports_the_best_untrained_arch(
    tiny_cfg, tmp_path
):
    result = run(tiny_cfg(*TRAINING_FREE))
    assert not (tmp_path / SUPERNET_FILE).exists() and not (tmp_path / "checkpoints").exists()
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert len(records) == 10 and [r["stage"] for r in records[:6]] == ["sample"] * 6
    final = result.final
    assert final["scorer"] == "scorer:proxy" and final["score"] == max(r["score"] for r in records)
    assert final["test_accuracy"] is None and final["files"] == {}
    assert final["params"] > 0 and not (tmp_path / "subnet.pt").exists()
    summary = (tmp_path / "summary.md").read_text()
    assert final["arch"] in summary and "n/a" in summary


def test_predictor_features_are_standardised_components_kept_with_the_predictor(tiny_cfg, tmp_path):
    from nas.errors import NasError
    from nas.pipeline.state import Run
    from nas.predictor import load_predictor

    cfg = tiny_cfg(*TRAINING_FREE, "predictor.features=[params,proxy:synflow]")
    run(cfg)
    reference = read_json(tmp_path / FEATURES_FILE)
    assert list(reference["values"]) == ["params", "proxy:synflow"]
    state = Run(cfg)
    features, names = state.predictor_features
    with pytest.raises(NasError, match=r"fitted with features \['params', 'proxy:synflow'\]"):
        load_predictor(tmp_path / PREDICTOR_FILE, state.space)
    predictor = load_predictor(tmp_path / PREDICTOR_FILE, state.space, features)
    archs = [state.space.from_str(r["arch"]) for r in read_jsonl(tmp_path / ARCHIVE_FILE)]
    x = predictor.encoder(archs)
    d = state.space.encoding_size
    assert x.shape == (len(archs), d + 2) and names == ["params", "proxy:synflow"]
    stats = reference_stats(reference["values"])
    params = [math.log(state.cost.params(a)) for a in archs]
    mean, std = stats["params"]
    assert x[:, d].tolist() == pytest.approx([(p - mean) / std for p in params], rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["search=training_free", "scorer.components=[oneshot]"], "cannot hold oneshot"),
        (["scorer.components=[proxy:nope]"], "unknown scorer.components entry 'proxy:nope'"),
        (["scorer.components=[params,params]"], "distinct"),
        (["scorer.components=[params]", "+scorer.weights.flops=1"], r"scorer\.weights names"),
        (["scorer.reference=1"], r"scorer\.reference=1 is invalid"),
        (["predictor.features=[oneshot]"], "unknown predictor.features entry 'oneshot'"),
        (["predictor.features=[params,params]"], "distinct"),
        (["shortlist.lr=0"], r"shortlist\.lr=0\.0 must be > 0"),
        (["shortlist.weight_decay=-1"], r"shortlist\.weight_decay=-1\.0 >= 0"),
        (["shortlist.steps=0"], r"shortlist\.steps=0 is invalid"),
    ],
)
def test_bad_scorer_settings_fail_at_start_up_naming_the_key(tiny_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(tiny_cfg(*overrides))


def test_the_shortlist_trains_the_best_scored_archs_and_export_takes_the_most_accurate(
    tiny_cfg, tmp_path
):
    """``shortlist.size=3``: the three best distinct archs by score are trained briefly,
    ``shortlist.json`` keeps each one's accuracy, export takes the most accurate (not the best
    scored), and a rerun reuses the finished results instead of training again."""
    from nas.files import SHORTLIST_FILE

    stages = "stages=[sample,evolve,shortlist,export]"
    short = ("shortlist.size=3", "shortlist.steps=3", "shortlist.batch_size=8")
    final = run(tiny_cfg(*TRAINING_FREE, stages, *short, "shortlist.val_images=32")).final
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    best: dict[str, float] = {}
    for r in records:
        best[r["arch"]] = max(best.get(r["arch"], -math.inf), r["score"])
    top3 = sorted(best, key=best.get, reverse=True)[:3]
    record = read_json(tmp_path / SHORTLIST_FILE)
    assert record["done"] and [r["arch"] for r in record["results"]] == top3
    assert all(0 <= r["accuracy"] <= 100 and r["seconds"] > 0 for r in record["results"])
    winner = max(record["results"], key=lambda r: (r["accuracy"], -r["loss"]))
    assert record["winner"] == winner["arch"] == final["arch"]
    assert final["shortlist"]["accuracy"] == winner["accuracy"]
    assert final["shortlist"]["steps"] == 3 and final["shortlist"]["candidates"] == 3
    # a run killed during the shortlist keeps what it trained: doctored accuracies survive
    # the rerun and decide
    (tmp_path / "final.json").unlink()
    doctored = [{**r, "accuracy": 100.0 * (r["arch"] == top3[2])} for r in record["results"]]
    from nas.io import write_json_atomic

    write_json_atomic(tmp_path / SHORTLIST_FILE, {**record, "results": doctored, "done": False})
    again = run(
        tiny_cfg(*TRAINING_FREE, "stages=[shortlist,export]", *short, "shortlist.val_images=32")
    )
    assert again.final["arch"] == top3[2] and again.final["shortlist"]["accuracy"] == 100.0


def test_brief_training_scores_the_same_however_the_held_out_images_are_batched():
    from torch import nn

    from nas.evaluate.brief import EVAL_CHUNK, brief_training

    g = torch.Generator().manual_seed(0)
    train = [(torch.randn(16, 3, 4, 4, generator=g), torch.randint(0, 3, (16,), generator=g))]
    x, y = (
        torch.randn(3 * EVAL_CHUNK + 7, 3, 4, 4, generator=g),
        torch.randint(0, 3, (391,), generator=g),
    )
    results = []
    for val in ([(x, y)], list(zip(x.split(100), y.split(100), strict=True))):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 3))
        results.append(brief_training(net, train, val, steps=3, lr=0.1, weight_decay=0.0))
    (one, many) = results
    assert one.accuracy == many.accuracy and 0 < one.accuracy < 100
    assert one.loss == pytest.approx(many.loss, rel=1e-6)
