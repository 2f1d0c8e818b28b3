"""The real entry point, as a user runs it, on the offline digits data."""

import csv
import subprocess
import sys

import pytest

from nas.io import read_json
from nas.spaces import get_space
from tests.conftest import ROOT


def train_py(
    run_dir, *overrides: str, timeout: int = 900
) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run ``python train.py +experiment=digits <overrides>`` into ``run_dir`` as a user would."""
    cmd = [
        sys.executable,
        "train.py",
        "+experiment=digits",
        *overrides,
        f"hydra.run.dir={run_dir}",
        "trainer.enable_progress_bar=false",
    ]
    return cmd, subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_py_digits_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    cmd, proc = train_py(run_dir, "search.epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(run_dir) in proc.stdout.replace("\n", "")

    final = read_json(run_dir / "final.json")
    for shown in (final["arch"][:40], "summary.md", f"{final['params']:,} parameters"):
        assert shown in proc.stdout.replace("\n", ""), shown
    assert final["test_accuracy"] > 20  # 10 classes: chance is 10
    for name in ("subnet.pt", "subnet.onnx", "archive.jsonl", "predictor.pt", "plots/cell.png"):
        assert (run_dir / name).exists(), name
    derived = read_json(run_dir / "derived.json")
    assert derived["final"] and derived["epoch"] == 1
    arch = get_space("darts").from_json(derived)  # parses back into the space
    assert len(arch.normal) == len(arch.reduce) == 8
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/acc")]
    assert len(rows) == 2
    assert float(rows[-1]["val/acc"]) > 0.2  # 10 classes: chance is 0.1

    # a second run in the same directory skips the finished search
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipping" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_ddp_search_on_two_cpu_processes_runs_to_the_end(tmp_path):
    """``trainer=ddp`` with gloo on 2 CPU processes: every rank joins the trainings (search,
    fine-tune) and saves their checkpoints together (Lightning's save_checkpoint is
    collective); rank zero alone derives, samples, evolves, exports and reports."""
    run_dir = tmp_path / "ddp"
    _, proc = train_py(
        run_dir,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        "search.epochs=1",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results in:") == 1  # rank zero alone reports
    assert read_json(run_dir / "derived.json")["final"]
    assert (run_dir / "finetuned.ckpt").exists() and (run_dir / "final.json").exists()
    assert (run_dir / "supernet.ckpt").stat().st_size > 0
