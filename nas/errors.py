"""Errors caused by user input (a config key, a file, a value) or by diverging numerics.

``train.py`` prints these as one message naming what to fix, without a traceback; anything
else is a bug and keeps its traceback.
"""

from collections.abc import Mapping

import torch


class NasError(Exception):
    """A mistake in the user's input or environment that the message says how to fix."""


class ConfigError(NasError, ValueError):
    """A config key with a missing, unknown or inconsistent value."""


class DatasetUnavailableError(NasError, RuntimeError):
    """A dataset's files are absent and could not be obtained."""


class NumericsError(NasError, FloatingPointError):
    """A loss or parameter became NaN or infinite; the message names the step and the fixes."""


def ensure_finite(value: torch.Tensor, what: str, epoch: int, step: int, fixes: str) -> None:
    """Raise :class:`NumericsError` when ``value`` holds a NaN or an infinity.

    The run stops before the optimiser applies the step, so the checkpoints already written
    (``last.ckpt``: the last finished epoch) stay good; ``fixes`` names the keys to try.
    """
    if not bool(torch.isfinite(value).all()):
        raise NumericsError(
            f"{what} is not finite at epoch {epoch}, step {step}; the checkpoints written so far "
            f"are kept. Try: {fixes}"
        )


def ensure_finite_state(state: Mapping[str, object], epoch: int, step: int, fixes: str) -> None:
    """:func:`ensure_finite` on every floating-point tensor of a state dict: called before a
    checkpoint is written, so a diverged step never replaces the last good checkpoint."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            ensure_finite(value, f"the checkpointed tensor {name!r}", epoch, step, fixes)
