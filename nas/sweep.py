"""Sweeps: what a Hydra multirun leaves behind, and the retraining sweep of a run's top archs.

:class:`SweepSummary` is a Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``):
when a multirun ends, under any launcher or sweeper, it reads every job directory of the sweep
and writes ``summary.json`` and ``summary.md`` there: per job, the overrides that differ
between jobs, the final (or derived) arch, its one-shot score, test accuracy and parameters.

:func:`write_top_k` writes a finished run's ``k`` best archived archs as arch files
(``topk/<rank>.json``) and returns the multirun command that retrains them, one job each.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from nas.evolution.archive import finite
from nas.files import ARCHIVE_FILE, DERIVED_FILE, FINAL_FILE, RETRAIN_FILE
from nas.io import read_json, write_json_atomic

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
TOP_K_DIR = "topk"


def _job_row(job_dir: Path) -> dict[str, Any]:
    final = job_dir / FINAL_FILE
    derived = job_dir / DERIVED_FILE
    retrained = job_dir / RETRAIN_FILE
    record = read_json(final) if final.exists() else {}
    arch = record.get("arch") or (read_json(derived)["arch"] if derived.exists() else None)
    row: dict[str, Any] = {
        "job": job_dir.name,
        "overrides": list(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")),
        "arch": arch,
        "score": record.get("score"),
        "oneshot_score": record.get("oneshot_score"),
        "test_accuracy": record.get("test_accuracy"),
        "params": record.get("params"),
        "status": "done" if final.exists() else ("searched" if arch else "no result"),
    }
    if retrained.exists():
        again = read_json(retrained)
        row.update(
            arch=row["arch"] or again["arch"],
            retrain_accuracy=again["test_accuracy"],
            params=again["params"],
            status="retrained",
        )
    return row


def summarise_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write ``summary.json`` and ``summary.md`` for the jobs under ``sweep_dir``; return the rows.

    A job is a directory holding ``.hydra/overrides.yaml``; the overrides every job shares
    are left out of each row's ``overrides``.
    """
    sweep_dir = Path(sweep_dir)
    jobs = sorted(
        (d for d in sweep_dir.iterdir() if (d / ".hydra" / "overrides.yaml").exists()),
        key=lambda d: (len(d.name), d.name),
    )
    rows = [_job_row(d) for d in jobs]
    shared = set.intersection(*(set(r["overrides"]) for r in rows)) if rows else set()
    for row in rows:
        row["overrides"] = [o for o in row["overrides"] if o not in shared]
    write_json_atomic(sweep_dir / SUMMARY_JSON, rows)
    (sweep_dir / SUMMARY_MD).write_text(_markdown(rows, sorted(shared)))
    return rows


def _markdown(rows: Sequence[dict[str, Any]], shared: Sequence[str]) -> str:
    def cell(value: Any, fmt: str = "") -> str:
        return "—" if value is None else format(value, fmt)

    retrained = any("retrain_accuracy" in r for r in rows)
    head = "| job | overrides | score | test acc | " + ("retrained | " if retrained else "")
    lines = [
        "# Sweep summary",
        "",
        f"Shared overrides: `{' '.join(shared) or '(none)'}`",
        "",
        head + "params | status | arch |",
        "|---" * (7 + retrained) + "|",
    ]
    for r in rows:
        extra = f"{cell(r.get('retrain_accuracy'), '.2f')} | " if retrained else ""
        lines.append(
            f"| {r['job']} | `{' '.join(r['overrides'])}` | {cell(r['score'], '.3f')} | "
            f"{cell(r['test_accuracy'], '.2f')} | {extra}{cell(r['params'], ',')} | "
            f"{r['status']} | `{r['arch'] or '—'}` |"
        )
    return "\n".join(lines) + "\n"


class SweepSummary(Callback):
    """Writes the sweep's summary when a multirun ends (see :func:`summarise_sweep`)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = summarise_sweep(sweep_dir)
            print(f"sweep summary ({len(rows)} jobs): {(sweep_dir / SUMMARY_MD).resolve()}")


def write_top_k(run_dir: str | Path, k: int, experiment: str) -> str:
    """Write the ``k`` best one-shot scored archs of ``run_dir``'s archive as
    ``topk/<rank>.json`` (``{"space", "arch", "score"}``, the form ``arch=`` reads) and
    return the command that retrains them as one multirun of ``+experiment=<experiment>``."""
    from nas.evaluate.scorer import scorer_source
    from nas.evolution import Archive
    from nas.spaces import get_space

    run_dir = Path(run_dir)
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    space = get_space(config.space.name)
    scorer = config.get("scorer") or {"name": "oneshot", "components": ["oneshot"]}  # older runs
    source = scorer_source(scorer["name"], scorer["components"])
    entries = [
        e for e in finite(Archive(space, run_dir / ARCHIVE_FILE)) if e.score.source == source
    ]
    if not entries:
        raise ValueError(f"{run_dir / ARCHIVE_FILE} holds no arch scored by {source}")
    best = sorted(entries, key=lambda e: -e.score.value)[:k]
    files = []
    for rank, entry in enumerate(best, start=1):
        path = run_dir / TOP_K_DIR / f"{rank}.json"
        write_json_atomic(path, {**space.to_json(entry.arch), "score": entry.score.value})
        files.append(str(path.resolve()))
    return shlex.join(
        ["python", "train.py", "-m", f"+experiment={experiment}", "arch=" + ",".join(files)]
    )
