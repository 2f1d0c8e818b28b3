"""Sweeps: launcher and sweeper configs compose, a multirun ends with its summary, a run's
top archs become one retraining multirun."""

import random
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nas.evaluate.base import Cost, Score
from nas.evolution import Archive
from nas.io import read_json, write_json_atomic
from nas.spaces import get_space
from nas.sweep import summarise_sweep, write_top_k
from tests.conftest import CONF_DIR, ROOT


def compose_with_hydra(*overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    ("override", "target"),
    [
        ("launcher=local", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
        ("launcher=slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
        ("launcher=ray", "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"),
    ],
)
def test_every_launcher_composes_with_its_plugin(override, target):
    cfg = compose_with_hydra("+experiment=digits", override)
    assert cfg.hydra.launcher._target_ == target
    assert cfg.hydra.callbacks.sweep_summary._target_ == "nas.sweep.SweepSummary"


def test_the_optuna_search_composes_and_maximises_the_score():
    cfg = compose_with_hydra("+experiment=digits", "hparams_search=digits_optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert set(sweeper.params) == {"search", "search.w_lr", "search.arch_lr"}
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"


def _job(sweep, num: int, overrides: list[str], final: dict | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if final is not None:
        write_json_atomic(job / "final.json", final)


def test_the_summary_lists_each_job_by_what_differs(tmp_path):
    final = {
        "arch": "A",
        "score": 71.5,
        "oneshot_score": 71.5,
        "test_accuracy": 70.25,
        "params": 18618,
    }
    _job(tmp_path, 0, ["+experiment=digits", "seed=0"], final)
    _job(tmp_path, 1, ["+experiment=digits", "seed=1"], None)  # killed before a result
    _job(tmp_path, 10, ["+experiment=digits", "seed=10"], {**final, "arch": "B"})
    rows = summarise_sweep(tmp_path)
    assert [(r["job"], r["overrides"], r["arch"], r["status"]) for r in rows] == [
        ("0", ["seed=0"], "A", "done"),
        ("1", ["seed=1"], None, "no result"),
        ("10", ["seed=10"], "B", "done"),
    ]
    assert read_json(tmp_path / "summary.json") == rows
    md = (tmp_path / "summary.md").read_text()
    assert "`+experiment=digits`" in md  # the shared override, once
    assert "| 0 | `seed=0` | 71.500 | 70.25 | 18,618 | done | `A` |" in md


def test_top_k_archs_become_one_retraining_multirun(tmp_path):
    space = get_space("nb201")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(
        OmegaConf.create({"name": "x", "space": {"name": "nb201"}}),
        tmp_path / ".hydra" / "config.yaml",
    )
    archive = Archive(space, tmp_path / "archive.jsonl")
    rng = random.Random(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(8)))
    for n, arch in enumerate(archs):
        archive.add(arch, Score(float(n), "oneshot", Cost()), stage="sample")
    command = write_top_k(tmp_path, 3, "x_retrain")
    files = [tmp_path / "topk" / f"{k}.json" for k in (1, 2, 3)]
    assert command.startswith("python train.py -m +experiment=x_retrain arch=")
    assert command.endswith("arch=" + ",".join(str(f.resolve()) for f in files))
    assert [space.from_json(read_json(f)) for f in files] == archs[::-1][:3]


@pytest.mark.slow
def test_a_local_multirun_runs_two_searches_in_parallel_and_summarises_them(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "+experiment=digits",
        "seed=0,1",
        "launcher=local",
        "search.epochs=1",
        "finetune.epochs=1",
        "dataset.limit_train=640",
        "sample.size=4",
        "evolution.budget=4",
        "export.onnx=false",
        "~callbacks.wiring_diagnostics",
        "export.plots=false",
        f"hydra.sweep.dir={sweep}",
        "trainer.enable_progress_bar=false",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_json(sweep / "summary.json")
    assert [(r["job"], r["overrides"], r["status"]) for r in rows] == [
        ("0", ["seed=0"], "done"),
        ("1", ["seed=1"], "done"),
    ]
    for row in rows:
        final = read_json(sweep / row["job"] / "final.json")
        assert (
            row["arch"] == final["arch"]
            and row["score"] == final["score"] == final["oneshot_score"]
        )
    assert "sweep summary (2 jobs)" in proc.stdout
