"""The whole pipeline on offline data: stages, artifacts, resume, constraints, exports."""

import json
import random

import numpy as np
import pytest
import torch

import nas
from nas.cost import CostModel, count_flops, count_params
from nas.errors import ConfigError
from nas.evaluate import OneShotEvaluator
from nas.evolution.pareto import knee
from nas.export import build_subnet
from nas.export.report import accuracy
from nas.files import ARCHIVE_FILE, FINAL_FILE, PREDICTOR_FILE, SUBNET_FILE, SUPERNET_FILE
from nas.io import read_json, read_jsonl
from nas.pipeline import Run, run
from nas.predictor import load_predictor
from nas.spaces import get_space
from tests.conftest import image_tree

QUICK = (
    "stages=[search,derive,finetune,sample,evolve,export]",
    "search.epochs=1",
    "finetune.epochs=1",
    "sample.size=6",
    "sample.neighbours=3",
    "evolution.budget=6",
    "evolution.refine.q=2",
    "predictor.train.steps=30",
    "oneshot.calib_batches=1",
    "oneshot.val_batches=1",
    "oneshot.batch_size=32",
)


@pytest.fixture
def quick_cfg(tiny_cfg):
    def make(*overrides):
        return tiny_cfg(*QUICK, *overrides)

    return make


def _evaluated(monkeypatch) -> list:
    """Record every arch the one-shot evaluator scores from now on."""
    seen: list = []
    original = OneShotEvaluator.evaluate

    def spy(self, archs):
        seen.extend(archs)
        return original(self, archs)

    monkeypatch.setattr(OneShotEvaluator, "evaluate", spy)
    return seen


def test_pipeline_writes_every_artifact_and_a_rerun_skips_every_stage(
    quick_cfg, run_copy, tmp_path, monkeypatch
):
    run_copy(*QUICK)
    final = read_json(tmp_path / FINAL_FILE)
    for name in (
        "supernet.ckpt",
        "finetuned.ckpt",
        "derived.json",
        "alphas.jsonl",
        ARCHIVE_FILE,
        PREDICTOR_FILE,
        SUBNET_FILE,
        "subnet.onnx",
        "summary.md",
        "plots/cell.png",
        "plots/search_curve.png",
        "plots/score_vs_params.png",
        "plots/op_weights_normal.png",
    ):
        assert (tmp_path / name).exists(), name
    archive = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert len(archive) == 12 and {r["stage"] for r in archive[:6]} == {"sample"}
    assert (
        archive[0]["arch"] == read_json(tmp_path / "derived.json")["arch"]
    )  # the derived arch first
    assert final["oneshot_score"] == max(r["score"] for r in archive)
    assert final["queries"] == 12 and final["found_by"]["algorithm"] == "refine"
    assert final["onnx"]["max_abs_diff"] < 1e-4
    summary = (tmp_path / "summary.md").read_text()
    assert final["arch"] in summary and "plots/cell.png" in summary

    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    evaluated = _evaluated(monkeypatch)
    result = run(quick_cfg())
    assert evaluated == []
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert result.final == final and result.arch == final["arch"]


def test_a_run_stopped_after_sample_evolves_without_rescoring(quick_cfg, tmp_path, monkeypatch):
    run(quick_cfg("stages=[search,derive,finetune,sample]"))  # a kill after sample leaves this
    sampled = [r["arch"] for r in read_jsonl(tmp_path / ARCHIVE_FILE)]
    assert len(sampled) == 6 and not (tmp_path / FINAL_FILE).exists()
    evaluated = _evaluated(monkeypatch)
    run(quick_cfg())
    space = get_space("darts")
    assert len(evaluated) == 6 and not {space.to_str(a) for a in evaluated} & set(sampled)
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert [r["arch"] for r in records[:6]] == sampled
    assert len({(r["arch"], r["source"]) for r in records}) == len(records) == 12


def test_exported_subnet_is_the_scored_network(quick_cfg, run_copy, tmp_path):
    run_copy(*QUICK)
    cfg = quick_cfg()
    final = read_json(tmp_path / FINAL_FILE)
    net, record = nas.load_subnet(tmp_path / SUBNET_FILE)
    assert record["arch"] == final["arch"] and count_params(net) == final["exported_params"]
    state = Run(cfg)
    # the reloaded network scores on the validation batches exactly what the archive says
    assert accuracy(net, state.evaluator.val) == pytest.approx(final["oneshot_score"])
    x = state.evaluator.calib[0][:4]
    with torch.no_grad():
        logits = net(x)
    again, _ = nas.load_subnet(tmp_path / SUBNET_FILE)
    with torch.no_grad():
        assert torch.equal(again(x), logits)
    # ONNX agrees with PyTorch
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "subnet.onnx"))
    (got,) = session.run(None, {"images": x.numpy()})
    assert np.abs(got - logits.numpy()).max() < 1e-4
    # the predictor reloads and predicts what it was fitted to predict
    predictor = load_predictor(tmp_path / PREDICTOR_FILE, state.space)
    archs = [state.space.from_str(r["arch"]) for r in read_jsonl(tmp_path / ARCHIVE_FILE)]
    assert torch.isfinite(predictor.predict(archs).mean).all()


def test_a_saved_predictor_predicts_what_it_predicted(tmp_path):
    from nas.predictor import build_predictor, save_predictor

    space = get_space("nb201")
    archs = [space.sample(random.Random(i)) for i in range(30)]
    scores = [float(len(set(a))) + 0.1 * i for i, a in enumerate(archs)]
    for kind in ("delta", "absolute"):
        fitted = build_predictor(kind, space, {"steps": 40}, k_nearest=3)
        fitted.fit(archs, scores)
        save_predictor(tmp_path / f"{kind}.pt", fitted, archs, scores, {"k_nearest": 3})
        loaded = load_predictor(tmp_path / f"{kind}.pt", space)
        others = [space.sample(random.Random(100 + i)) for i in range(10)]
        assert torch.equal(loaded.predict(others).mean, fitted.predict(others).mean)
        assert loaded.cfg.steps == 40
    (tmp_path / "torn.pt").write_bytes((tmp_path / "delta.pt").read_bytes()[:100])
    from nas.errors import NasError

    with pytest.raises(NasError, match=r"torn\.pt is not a readable predictor file"):
        load_predictor(tmp_path / "torn.pt", space)


def test_max_params_is_never_exceeded(quick_cfg, tmp_path):
    cfg = quick_cfg("stages=[search,derive]")
    run(cfg)
    cost = Run(cfg).cost
    space = get_space("darts")

    params = sorted(cost.params(space.sample(random.Random(i))) for i in range(200))
    limit = params[len(params) // 3]
    run(quick_cfg(f"constraints.max_params={limit}"))
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert len(records) == 12
    assert all(cost.params(space.from_str(r["arch"])) <= limit for r in records)
    assert read_json(tmp_path / FINAL_FILE)["params"] <= limit


@pytest.mark.parametrize(
    ("name", "opts"), [("darts", {"c": 4, "layers": 3}), ("nb201", {"c": 4, "n_cells": 1})]
)
def test_cost_model_counts_what_the_subnet_has(name, opts):

    space = get_space(name)
    cost = CostModel(space, 10, 3, 8, opts)
    for seed in range(4):
        arch = space.sample(random.Random(seed))
        net = build_subnet(space, arch, 10, 3, opts).eval()
        assert cost.params(arch) == count_params(net)
        assert cost.flops(arch) == count_flops(net, torch.zeros(1, 3, 8, 8))


def test_unknown_stage_is_named(quick_cfg):
    from nas.errors import ConfigError

    with pytest.raises(ConfigError, match="evolv"):
        run(quick_cfg("stages=[search,evolv]"))
    with pytest.raises(ConfigError, match="order"):
        run(quick_cfg("stages=[sample,search]"))


def test_retrain_digits_from_a_final_json(tmp_path):
    """The retrain stage trains the arch of a final.json from scratch, far above chance."""
    from tests.conftest import compose_cfg

    space = get_space("darts")

    arch = space.sample(random.Random(0))
    final = tmp_path / "found" / FINAL_FILE
    final.parent.mkdir()
    final.write_text(json.dumps(space.to_json(arch)))
    out = tmp_path / "retrain"
    cfg = compose_cfg(
        "+experiment=digits_retrain",
        f"arch={final}",
        f"paths.output_dir={out}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "retrain.epochs=3",
    )
    result = run(cfg)
    record = read_json(out / "retrain.json")
    assert result.retrain == record and record["arch"] == space.to_str(arch)
    assert record["epochs"] == 3 and record["test_accuracy"] > 80  # 10 classes: chance is 10
    assert (out / "retrain" / "checkpoints" / "last.ckpt").exists()


def test_retrain_rejects_an_arch_that_does_not_parse(tmp_path):
    from nas.errors import ConfigError
    from tests.conftest import compose_cfg

    cfg = compose_cfg(
        "+experiment=digits_retrain", "arch=not-an-arch", f"paths.output_dir={tmp_path}"
    )
    with pytest.raises(ConfigError, match="arch="):
        run(cfg)


def test_finetune_trains_single_paths(quick_cfg, tmp_path):
    """After the single-path fine-tune, random subnets score higher one-shot than with the
    searched weights; the derived arch stays the search's."""
    cfg = quick_cfg("stages=[search,derive]", "dataset.noise=2.0")
    run(cfg)
    derived = read_json(tmp_path / "derived.json")
    space = get_space("darts")
    archs = [space.sample(random.Random(i)) for i in range(8)]
    before = [s.value for s in Run(cfg).evaluator.evaluate(archs)]
    run(quick_cfg("stages=[finetune]", "finetune.epochs=4", "dataset.noise=2.0"))
    after = [s.value for s in Run(cfg).evaluator.evaluate(archs)]
    assert sum(after) / len(after) > sum(before) / len(before) + 5
    assert read_json(tmp_path / "derived.json") == derived
    assert (tmp_path / "finetune" / "checkpoints" / "last.ckpt").exists()


def test_finetune_on_distinct_paths_ends_with_its_last_epochs_averaged(tiny_cfg, tmp_path):
    """``finetune.sampler=distinct`` with ``finetune.average_epochs=2``: the fine-tuned
    supernet is the mean of the weights at the ends of its two epochs (the first read from
    its epoch-0 checkpoint, the second from the same fine-tune without averaging)."""
    import shutil

    from nas.search.checkpoints import read_checkpoint

    nb201 = (*QUICK, "space=nb201", "search=spos")
    run(tiny_cfg(*nb201, "stages=[search,derive]"))
    plain = tmp_path / "plain"
    shutil.copytree(tmp_path, plain)
    finetune = ("stages=[finetune]", "finetune.epochs=2", "finetune.sampler=distinct")
    keep_all = "callbacks.model_checkpoint.save_top_k=-1"  # best-000.ckpt stays
    run(tiny_cfg(*nb201, *finetune, "finetune.average_epochs=2", keep_all))
    run(tiny_cfg(*nb201, *finetune, f"paths.output_dir={plain}"))

    def weights(checkpoint: dict, key: str = "state_dict") -> dict[str, torch.Tensor]:
        return {
            k: v
            for k, v in checkpoint[key].items()
            if k.startswith("supernet.") and torch.is_tensor(v) and v.is_floating_point()
        }

    first = weights(
        read_checkpoint(tmp_path / "finetune/checkpoints/best-000.ckpt"), "current_model_state"
    )
    last = weights(read_checkpoint(plain / "finetuned.ckpt"))
    averaged = weights(read_checkpoint(tmp_path / "finetuned.ckpt"))
    assert any(not torch.equal(first[k], last[k]) for k in last)
    for k, v in averaged.items():
        torch.testing.assert_close(v, (first[k] + last[k]) / 2)


def test_pruned_finetune_trains_the_ops_the_searched_supernet_rates_best(tiny_cfg, tmp_path):
    from nas.search.checkpoints import read_checkpoint

    nb201 = (*QUICK, "space=nb201", "search=spos", "stages=[search,derive,finetune]")
    run(tiny_cfg(*nb201, "finetune.prune=2", "finetune.prune_paths=20"))
    pruned = read_json(tmp_path / "pruned.json")
    for ops, ratings in zip(pruned["allowed"]["cell"], pruned["ratings"]["cell"], strict=True):
        assert len(ops) == 3
        rated = [r if r is not None else float("inf") for r in ratings]
        dropped = [rated[k] for k in range(5) if k not in ops]
        assert max(dropped) <= min(rated[k] for k in ops)
    search = read_checkpoint(tmp_path / "finetuned.ckpt")["hyper_parameters"]["search"]
    assert search["allowed"] == pruned["allowed"]


@pytest.mark.parametrize(
    "bad", [("finetune.prune=2", "finetune.sampler=sandwich"), ("space=darts", "finetune.prune=1")]
)
def test_a_prune_the_space_cannot_take_fails_before_the_search(bad, tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"finetune\.prune"):
        run(tiny_cfg(*QUICK, "space=nb201", *bad))
    assert not (tmp_path / "checkpoints").exists()


def test_cell_diagram_in_dot_names_every_edge_and_its_op(tmp_path, monkeypatch):
    from nas.export import plots

    space = get_space("nb201")
    arch = ("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")
    dot = plots.cell_dot(space, arch)
    assert dot.count("->") == 5  # the 'none' edge passes nothing and is left out
    assert '"cell:0" -> "cell:1" [label="nor_conv_3x3"' in dot and "none" not in dot
    monkeypatch.setattr(plots.shutil, "which", lambda name: None)  # no graphviz: matplotlib
    assert (
        plots.cell_diagram(space, arch, tmp_path).exists() and not (tmp_path / "cell.dot").exists()
    )


@pytest.mark.skipif(
    __import__("shutil").which("dot") is None, reason="graphviz's dot not installed"
)
def test_cell_diagram_is_rendered_by_graphviz_when_installed(tmp_path):
    from nas.export import plots

    space = get_space("darts")
    path = plots.cell_diagram(space, space.sample(random.Random(0)), tmp_path)
    assert (tmp_path / "cell.dot").exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_wandb_run_offline_holds_the_pictures_the_archive_and_the_summary(
    quick_cfg, tmp_path, monkeypatch
):
    """``logger=wandb`` with ``WANDB_MODE=offline``: the run directory's offline W&B run holds
    the op-weight heatmaps and derived cell of every epoch, the final plots, the archive
    table, the final record as its summary and the exported files as an artifact."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    result = run(quick_cfg("logger=wandb", "callbacks.wiring_diagnostics.pictures=true"))
    (offline,) = (tmp_path / "wandb").glob("offline-run-*")
    media = offline / "files" / "media"
    images = {p.name.rsplit("_", 2)[0] for p in (media / "images").rglob("*.png")}
    assert {"op_weights", "derived_cell", "cell", "search_curve", "score_vs_params"} <= images
    (table,) = (media / "table").glob("archive_*.table.json")
    rows = json.loads(table.read_text())["data"]
    assert len(rows) == len(list(read_jsonl(tmp_path / ARCHIVE_FILE)))
    # summary, config and artifact live in the run's record log (read by `wandb sync`)
    log = next(offline.glob("run-*.wandb")).read_bytes()
    score = json.dumps(result.final["oneshot_score"]).encode()
    for recorded in (b"final/oneshot_score", score, b"final-subnet", b"evolution", b"refine"):
        assert recorded in log, recorded


@pytest.mark.parametrize("algorithm", ["refine", "regularized", "random"])
def test_every_evolution_algorithm_starts_from_the_sample_and_spends_its_budget(
    quick_cfg, tmp_path, monkeypatch, algorithm
):
    """The sampled archs are the search's start (replayed from the archive, no query) and
    ``evolution.budget`` new archs are scored, whatever the algorithm."""
    run(quick_cfg("stages=[search,derive,finetune,sample]"))
    sampled = {r["arch"] for r in read_jsonl(tmp_path / ARCHIVE_FILE)}
    evaluated = _evaluated(monkeypatch)
    run(
        quick_cfg(
            "stages=[search,derive,finetune,sample,evolve]",
            f"evolution.algorithm={algorithm}",
            "evolution.population_size=4",
        )
    )
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert len(evaluated) == 6 and len(records) == 12  # evolution.budget=6 after 6 sampled
    assert not {get_space("darts").to_str(a) for a in evaluated} & sampled
    if algorithm == "regularized":  # the first child mutates a member of the sampled population
        space = get_space("darts")
        child = space.from_str(records[6]["arch"])
        assert any(space.distance(space.from_str(a), child) == 1 for a in sampled)


def test_a_strategy_without_alphas_derives_no_arch_and_samples_at_random(quick_cfg, tmp_path):
    """``spos`` has no architecture parameters: ``derived.json`` holds no arch (argmax of its
    uniform probabilities would be the first op of every edge), the sample stage draws at
    random instead of around it, and the summary says so."""
    run(quick_cfg("search=spos", "finetune.epochs=0", "stages=[search,derive,sample,export]"))
    derived = read_json(tmp_path / "derived.json")
    assert derived["arch"] is None and derived["final"]
    space = get_space("darts")
    uniform = {k: torch.ones(e, len(space.op_names)) for k, e in space.cell_edges.items()}
    first_ops = space.to_str(space.derive(uniform))
    sampled = [r["arch"] for r in read_jsonl(tmp_path / ARCHIVE_FILE)]
    assert len(sampled) == 6 and first_ops not in sampled
    assert "no arch derived" in (tmp_path / "summary.md").read_text()


def _mtimes(root) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_changed_scorer_setting_rescores_and_keeps_the_old_scores(
    run_copy, quick_cfg, tmp_path, monkeypatch
):
    """Rerunning a finished directory with another ``oneshot.*`` value redoes sample, evolve
    and export with fresh scores (none of the old supernet's reused), leaves the search and
    fine-tune alone, and keeps the old records in the archive under their producer."""
    run_copy(*QUICK)
    before = _mtimes(tmp_path)
    old = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    evaluated = _evaluated(monkeypatch)
    run(quick_cfg("oneshot.val_batches=2"))
    assert len(evaluated) == 12  # sample.size + evolution.budget, all scored anew
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert records[:12] == old and len(records) == 24
    assert {r["producer"]["scorer"] for r in records[12:]} != {old[0]["producer"]["scorer"]}
    for name in ("supernet.ckpt", "finetuned.ckpt"):
        assert (tmp_path / name).stat().st_mtime_ns == before[tmp_path / name], name
    assert (tmp_path / FINAL_FILE).stat().st_mtime_ns != before[tmp_path / FINAL_FILE]
    stages = read_json(tmp_path / "stages.json")
    assert stages["sample"]["settings"]["oneshot.val_batches"] == 2


def test_a_changed_training_setting_redoes_the_stage_from_scratch(
    run_copy, quick_cfg, tmp_path, caplog
):
    """Another ``finetune.w_lr`` moves the fine-tune's files to ``stale/`` (nothing lost),
    trains it again from the searched supernet and redoes the stages after it; the log names
    the changed key. A larger ``finetune.epochs`` alone continues from the checkpoint."""
    run_copy(*QUICK)
    old = torch.load(tmp_path / "finetuned.ckpt", weights_only=True)["state_dict"]
    final_made = (tmp_path / FINAL_FILE).stat().st_mtime_ns
    with caplog.at_level("WARNING"):
        run(quick_cfg("finetune.w_lr=0.001"))
    assert "finetune.w_lr" in caplog.text
    (stale,) = (tmp_path / "stale").glob("finetune-*")
    kept = torch.load(stale / "finetuned.ckpt", weights_only=True)["state_dict"]
    tensors = [k for k in old if isinstance(old[k], torch.Tensor)]
    assert all(torch.equal(old[k], kept[k]) for k in tensors)
    new = torch.load(tmp_path / "finetuned.ckpt", weights_only=True)
    assert new["epoch"] == 1 and any(not torch.equal(old[k], new["state_dict"][k]) for k in tensors)
    assert (tmp_path / FINAL_FILE).stat().st_mtime_ns != final_made  # export redone

    run(quick_cfg("finetune.w_lr=0.001", "finetune.epochs=2"))
    assert len(list((tmp_path / "stale").glob("finetune-*"))) == 1  # it continued
    assert torch.load(tmp_path / "finetuned.ckpt", weights_only=True)["epoch"] == 2


def test_scores_on_augmented_data_are_reproduced_by_a_new_process_and_the_export(
    quick_cfg, tmp_path
):
    """With random crops and flips on (an ``imagefolder`` tree), a process with another random
    state scores the final arch exactly as the run did, and so does the exported
    ``subnet.pt``: scores are measured on fixed, unaugmented views."""
    data = tmp_path / "images"
    image_tree(data, per_class=40)
    images = (
        "dataset=imagefolder",
        f"dataset.train_dir={data}/train",
        f"dataset.test_dir={data}/test",
        "dataset.image_size=8",
        "dataset.batch_size=8",
        "dataset.num_workers=0",
        "dataset.augment=true",
        "oneshot.val_batches=2",
    )
    cfg = quick_cfg(*images, f"paths.output_dir={tmp_path}/run")
    run(cfg)
    final = read_json(tmp_path / "run" / FINAL_FILE)
    torch.manual_seed(123)  # a resumed run or another process: other random crops
    state = Run(cfg)
    arch = state.space.from_str(final["arch"])
    assert state.evaluator.evaluate([arch])[0].value == final["oneshot_score"]
    net, _ = nas.load_subnet(tmp_path / "run" / SUBNET_FILE)
    assert accuracy(net, state.evaluator.val) == pytest.approx(final["oneshot_score"])


def test_a_latency_budget_and_two_objectives_export_the_front_and_its_knee(quick_cfg, tmp_path):
    cache = f"latency.cache_dir={tmp_path / 'cache'}"
    cfg = quick_cfg("stages=[search,derive]", cache)
    run(cfg)
    latency = Run(cfg).latency  # measured once, then read from the cache
    space = get_space("darts")
    times = sorted(latency.ms(space.sample(random.Random(i))) for i in range(200))
    limit = times[len(times) // 2]
    run(
        quick_cfg(
            "objectives=[score,latency]",
            f"constraints.max_latency_ms={limit}",
            "export.choice=knee",
            cache,
        )
    )
    assert len(list((tmp_path / "cache").iterdir())) == 1
    records = list(read_jsonl(tmp_path / ARCHIVE_FILE))
    assert all(latency.ms(space.from_str(r["arch"])) <= limit for r in records)
    final = read_json(tmp_path / FINAL_FILE)
    front = final["front"]
    ms, scores = [f["latency_ms"] for f in front], [f["score"] for f in front]
    assert ms == sorted(ms) and scores == sorted(scores)  # faster archs score less
    assert all(latency.ms(space.from_str(f["arch"])) == f["latency_ms"] for f in front)
    for r in records:  # every archived arch is on the front or beaten by a member of it
        t = latency.ms(space.from_str(r["arch"]))
        assert any(m <= t and s >= r["score"] for m, s in zip(ms, scores, strict=True))
    k = knee(np.array([[-s, m] for s, m in zip(scores, ms, strict=True)]))
    assert final["arch"] == front[k]["arch"] and final["latency_ms"] <= limit
    assert final["objectives"] == ["score", "latency"] and final["choice"] == "knee"
    assert "plots/pareto.png" in final["plots"]


def test_a_latency_budget_no_arch_meets_fails_before_training(quick_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"no arch .* meets constraints\.max_latency_ms=1e-06"):
        run(quick_cfg("constraints.max_latency_ms=0.000001", f"latency.cache_dir={tmp_path}"))
    assert not (tmp_path / SUPERNET_FILE).exists()


def test_checking_the_constraints_leaves_torchs_generator_as_it_was(quick_cfg, tmp_path):
    # the search after the check starts from the weights a run without constraints draws
    cfg = quick_cfg(
        "constraints.max_params=100000000",
        "constraints.max_latency_ms=100000",
        f"latency.cache_dir={tmp_path}",
    )
    torch.manual_seed(0)
    before = torch.get_rng_state()
    Run(cfg).check_constraints()
    assert torch.equal(torch.get_rng_state(), before)
