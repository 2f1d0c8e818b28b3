"""Checkpoints that survive a kill, resume to the same draws, and say what is wrong with them.

* :class:`AtomicCheckpointIO`: Lightning's checkpoint IO writing through
  :func:`nas.io.atomic_writer` (temporary name in the same directory, fsync, rename), so a
  kill mid-save leaves the previous checkpoint whole.
* :class:`RandomState`: the global random generators (torch CPU/CUDA, numpy, python) in
  every checkpoint, restored on resume, so draws outside the strategies' own generators
  (augmentation, dropout, worker seeds) continue as in an uninterrupted run.
* :func:`read_checkpoint`, :func:`check_resumable`, :func:`module_from_checkpoint`: loads
  with ``weights_only=True`` whose errors name the file and, for a checkpoint of another
  config, every key that differs.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from nas.errors import NasError
from nas.io import atomic_writer

M = TypeVar("M", bound=pl.LightningModule)

# Lightning warns that a mid-epoch checkpoint of a manually optimised module holds the state
# after the step's optimizer updates; that is the state a resume needs (the batch counts as done)
warnings.filterwarnings(
    "ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps"
)

#: hyperparameters a resumed training may change: a longer (or shorter) schedule
RESUMABLE_CHANGES = frozenset({"epochs"})


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside ``path``, fsync, rename."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_writer(path, "wb") as f:
            torch.save(checkpoint, f)


class RandomState(pl.Callback):
    """Saves and restores the global random generators with every checkpoint."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state_dict["python"])
        cuda = state_dict.get("cuda")
        if (
            cuda is not None
            and torch.cuda.is_available()
            and len(cuda) == torch.cuda.device_count()
        ):
            torch.cuda.set_rng_state_all(cuda)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path`` on the CPU (``weights_only=True``, memory-mapped); a
    truncated, corrupt or foreign file raises :class:`NasError` naming it."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # truncated zip, garbage bytes, a pickle weights_only refuses
        raise NasError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
            f"move it away and rerun to train this stage from scratch"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise NasError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


def _leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every leaf of nested mappings (tuples read as lists)."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], _plain(tree)


def config_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"key: <saved> there, <current> now"`` for every hyperparameter (dotted key) that
    differs, except those in :data:`RESUMABLE_CHANGES`."""
    was, now = dict(_leaves(saved)), dict(_leaves(current))
    return [
        f"{key}: {was.get(key)!r} there, {now.get(key)!r} now"
        for key in sorted(was.keys() | now.keys())
        if key.rsplit(".", 1)[-1] not in RESUMABLE_CHANGES and was.get(key) != now.get(key)
    ]


def check_resumable(path: str | Path, module: pl.LightningModule) -> None:
    """Raise :class:`NasError` unless ``path`` is a readable checkpoint of ``module``'s
    config (its hyperparameters may differ only in epoch counts)."""
    saved = read_checkpoint(path).get("hyper_parameters") or {}
    changes = config_changes(saved, dict(module.hparams))
    if changes:
        raise NasError(
            f"{path} was written by a run with another config ({'; '.join(changes)}): rerun "
            f"with those values to resume it, or start over in a new hydra.run.dir"
        )


def module_from_checkpoint(cls: type[M], path: str | Path) -> M:
    """``cls`` rebuilt from the hyperparameters in ``path`` with its weights loaded (CPU)."""
    checkpoint = read_checkpoint(path)
    try:
        module = cls(**checkpoint.get("hyper_parameters", {}))
        module.load_state_dict(checkpoint["state_dict"])
    except (TypeError, RuntimeError, KeyError) as err:
        raise NasError(
            f"{path} does not hold a {cls.__name__} of this version "
            f"({type(err).__name__}: {str(err)[:300]})"
        ) from None
    return module
