"""The real entry point, as a user runs it, on the offline digits data."""

import csv
import signal
import subprocess
import sys
import time

import pytest
import torch

from nas.io import read_json, read_jsonl
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
@pytest.mark.parametrize("search", ["darts", "spos"])
def test_ddp_search_on_two_cpu_processes_keeps_the_ranks_in_step(search, tmp_path):
    """``trainer=ddp`` with gloo on 2 CPU processes: every rank joins the trainings (search,
    fine-tune), ends each with the same alphas and sampler state as the other, and saves the
    checkpoints together (Lightning's save_checkpoint is collective); rank zero alone derives,
    samples, evolves, exports and reports; the other rank waits for it before the retraining
    (which reads final.json) and joins it."""
    run_dir, states = tmp_path / "ddp", tmp_path / "states"
    retrain = (
        ["stages=[search,derive,finetune,sample,evolve,export,retrain]", "retrain.epochs=1"]
        if search == "darts"
        else []
    )
    _, proc = train_py(
        run_dir,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.precision=32-true",
        f"search={search}",
        "search.epochs=1",
        "dataset.limit_train=640",
        "finetune.epochs=1",
        "sample.size=4",
        "evolution.budget=4",
        "export.plots=false",
        "export.onnx=false",
        "~callbacks.wiring_diagnostics",
        "+callbacks.dump._target_=tests.callbacks.DumpStrategyState",
        f"+callbacks.dump.dir={states}",
        *retrain,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "retrain.json").exists() == bool(retrain)
    assert proc.stdout.count("results in:") == 1  # rank zero alone reports
    assert read_json(run_dir / "derived.json")["final"]
    assert (run_dir / "finetuned.ckpt").exists() and (run_dir / "final.json").exists()
    assert (run_dir / "supernet.ckpt").stat().st_size > 0
    for training in ("ddp", "finetune"):
        zero, one = (
            torch.load(states / f"{training}_rank{r}.pt", weights_only=True) for r in (0, 1)
        )
        assert zero.keys() == one.keys() and zero, training
        for key in zero:
            a, b = zero[key], one[key]
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, (training, key)


def _without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.endswith("seconds") and k != "cost"}


def _kill_when(cmd: list[str], ready, timeout: float = 600) -> None:
    """Start ``cmd`` and SIGKILL it as soon as ``ready()`` holds (fails if it ends first)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, (
            "the run ended before the kill: " + proc.stderr.read()[-2000:].decode()
        )
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _check_user_run(run_dir, stdout: str) -> None:
    """What a user of ``train.py +experiment=digits`` gets: the run directory and final arch
    named on stdout, every file, a derived arch of the space, accuracy well above chance."""
    stdout = stdout.replace("\n", "")
    assert str(run_dir) in stdout
    final = read_json(run_dir / "final.json")
    for shown in (final["arch"][:40], "summary.md", f"{final['params']:,} parameters"):
        assert shown in stdout, shown
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


@pytest.mark.slow
def test_train_py_on_digits_end_to_end_and_killed_with_sigkill_resumes_to_the_same_result(
    tmp_path,
):
    """A real ``train.py`` run on digits, end to end; then the same run killed with SIGKILL
    mid-way through a search epoch, rerun, killed again while evolving, and rerun, ends with
    the files of the run never killed: the same alphas every epoch, the same supernet weights
    (bit for bit), archive and final arch."""
    same = (
        "search.epochs=2",
        "dataset.limit_train=640",
        "checkpoint_every_n_steps=4",
        "trainer.deterministic=true",
        "finetune.epochs=1",
        "sample.size=8",
        "evolution.budget=12",
        "~callbacks.wiring_diagnostics",
    )
    _, proc = train_py(tmp_path / "whole", *same)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_user_run(tmp_path / "whole", proc.stdout)

    run_dir = tmp_path / "killed"
    # 5 batches an epoch (320 images a half), two optimizer steps each: step 6 is batch 3 of
    # epoch 0, and the last checkpoint before it was written at step 4
    cmd, proc = train_py(
        run_dir,
        *same,
        "+callbacks.kill._target_=tests.callbacks.KillAtStep",
        "+callbacks.kill.step=6",
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True, mmap=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (0, 4)
    assert not (run_dir / "derived.json").exists()

    cmd = [c for c in cmd if "callbacks.kill" not in c]
    archive = run_dir / "archive.jsonl"
    _kill_when(cmd, lambda: any(r["stage"] != "sample" for r in read_jsonl(archive)))
    assert not (run_dir / "final.json").exists()

    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming the search" not in proc.stderr  # the second rerun skipped the search
    assert "search stage already done" in proc.stderr + proc.stdout

    whole = tmp_path / "whole"
    for name in ("derived.json", "final.json"):
        assert _without_timings(read_json(run_dir / name)) == _without_timings(
            read_json(whole / name)
        ), name
    for name in ("alphas.jsonl", "archive.jsonl"):
        got = [_without_timings(r) for r in read_jsonl(run_dir / name)]
        assert got == [_without_timings(r) for r in read_jsonl(whole / name)], name
    for name in ("supernet.ckpt", "finetuned.ckpt"):
        a = torch.load(run_dir / name, weights_only=True)["state_dict"]
        b = torch.load(whole / name, weights_only=True)["state_dict"]
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor)), name
