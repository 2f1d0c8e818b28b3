"""One-shot search: the Lightning module, strategies, callbacks and trainer wiring."""

# each strategy module registers its search.strategy name on import
from nas.search import betadarts, darts2, drnas, fairdarts, gdas, pcdarts, single_path  # noqa: F401
from nas.search.callbacks import ALPHAS_FILE, DERIVED_FILE, ArchitectureWriter, LastEpochsAverage
from nas.search.module import SupernetModule
from nas.search.parts import build_search_supernet, build_space
from nas.search.strategies import (
    DartsStrategy,
    Strategy,
    available_strategies,
    build_strategy,
    register_strategy,
)
from nas.search.trainer import CHECKPOINT_DIR, build_callbacks, build_loggers, build_trainer

__all__ = [
    "ALPHAS_FILE",
    "CHECKPOINT_DIR",
    "DERIVED_FILE",
    "ArchitectureWriter",
    "DartsStrategy",
    "LastEpochsAverage",
    "Strategy",
    "SupernetModule",
    "available_strategies",
    "build_callbacks",
    "build_loggers",
    "build_search_supernet",
    "build_space",
    "build_strategy",
    "build_trainer",
    "register_strategy",
]
