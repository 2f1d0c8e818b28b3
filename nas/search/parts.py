"""Build a search's space, supernet and strategy from plain config mappings.

``SupernetModule`` calls these with its saved hyperparameters, so a checkpoint rebuilds the
same parts (``SupernetModule.load_from_checkpoint``); config mistakes become
:class:`~nas.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.errors import ConfigError
from nas.spaces import SearchSpace, get_space
from nas.supernet import Supernet, build_supernet


def build_space(space: Mapping[str, Any]) -> SearchSpace:
    """The space ``space["name"]``, sized by the ``space["subnet"]`` keys (standalone net)."""
    try:
        return get_space(space["name"], **dict(space.get("subnet") or {}))
    except KeyError as err:
        raise ConfigError(err.args[0]) from None
    except TypeError as err:
        raise ConfigError(f"bad key in space.subnet for space {space['name']!r}: {err}") from None
    except ValueError as err:
        raise ConfigError(f"bad value in space.subnet for space {space['name']!r}: {err}") from None


def build_search_supernet(
    space: SearchSpace, options: Mapping[str, Any], num_classes: int, in_channels: int
) -> Supernet:
    """The supernet of ``space`` with the ``space.supernet`` options."""
    try:
        return build_supernet(space, num_classes, in_channels, **dict(options))
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None
