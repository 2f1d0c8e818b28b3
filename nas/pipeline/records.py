"""What each stage's outputs were made with: ``stages.json`` in the run directory.

A stage's *fingerprint* is the value of every config key it depends on and the digest of the
records of the stages whose files it reads. A stage counts as done only when its outputs are
whole and its recorded fingerprint equals today's; otherwise it is redone, and since its record
then changes, so is every stage that reads it. ``stages.json`` holds ``{stage: fingerprint}``
and is replaced atomically after each stage.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from nas.io import digest, read_json, write_json_atomic

STAGES_FILE = "stages.json"
STALE_DIR = "stale"  # outputs of a stage redone with other settings, moved aside

Fingerprint = dict[str, Any]  # {"settings": {key: value}, "inputs": {stage: digest | None}}


#: keys that say how a network runs, never what it computes: a run resumed with other values
#: (a search continued on a GPU) redoes nothing
EXECUTION_KEYS = frozenset(
    [
        *(f"space.supernet.{k}" for k in ("backend", "compile", "channels_last")),
        "search.cuda_graph",
        "latency.cache_dir",
    ]
)


def settings(cfg: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``{dotted key: resolved value}`` of the config ``keys``, groups flattened to their
    leaves (``search`` gives ``search.epochs``, ...), :data:`EXECUTION_KEYS` left out; a
    missing key reads ``None``."""
    out: dict[str, Any] = {}

    def leaves(key: str, value: Any) -> None:
        if key in EXECUTION_KEYS:
            return
        if isinstance(value, dict) and value:
            for k, v in value.items():
                leaves(f"{key}.{k}", v)
        else:
            out[key] = value

    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        plain = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        leaves(key, plain)
    return out


def changed_keys(old: Fingerprint, new: Fingerprint) -> list[str]:
    """The settings whose values differ and the inputs (``<stage> outputs``) that changed."""
    keys = [
        k
        for k in sorted(set(old["settings"]) | set(new["settings"]))
        if old["settings"].get(k) != new["settings"].get(k)
    ]
    inputs = [
        f"{s} outputs"
        for s in sorted(set(old["inputs"]) | set(new["inputs"]))
        if old["inputs"].get(s) != new["inputs"].get(s)
    ]
    return keys + inputs


class StageRecords:
    """``stages.json`` of one run directory; re-read on every access, so other processes'
    writes (a DDP rank zero's) are seen."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / STAGES_FILE

    def all(self) -> dict[str, Fingerprint]:
        return read_json(self.path) if self.path.exists() else {}

    def get(self, stage: str) -> Fingerprint | None:
        return self.all().get(stage)

    def digest_of(self, stage: str) -> str | None:
        """The digest of ``stage``'s record (``None``: it never ran here)."""
        record = self.get(stage)
        return None if record is None else digest(record)

    def put(self, stage: str, fingerprint: Fingerprint) -> None:
        write_json_atomic(self.path, {**self.all(), stage: fingerprint})


def set_aside(run_dir: Path, stage: str, names: Sequence[str]) -> Path | None:
    """Move the files and folders ``names`` of ``stage`` (those present) to
    ``stale/<stage>-<time>/``, keeping what they hold; returns that folder (``None``: none)."""
    present = [n for n in names if (run_dir / n).exists()]
    if not present:
        return None
    dest = (
        run_dir / STALE_DIR / f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6}"
    )
    for name in present:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(run_dir / name), str(target))
    return dest


def only_grown(old: Fingerprint, new: Fingerprint, extendable: Collection[str]) -> bool:
    """Whether the only change is a larger value of the ``extendable`` keys (an epoch count):
    the stage continues from its checkpoint instead of starting over."""
    changed = changed_keys(old, new)
    return bool(changed) and all(
        k in extendable and (new["settings"][k] or 0) >= (old["settings"].get(k) or 0)
        for k in changed
    )
