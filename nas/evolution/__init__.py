"""Searches that only call an ``Evaluator`` and a space: random search, regularized evolution,
NSGA-II (several objectives) and the predictor-guided refiner; all write one archive line per
evaluation."""

from nas.evolution.archive import Archive, Entry
from nas.evolution.nsga2 import nsga2
from nas.evolution.random_search import random_search
from nas.evolution.refine import RefineConfig, refine
from nas.evolution.regularized import regularized_evolution
from nas.evolution.sample import sample_around
from nas.evolution.tracker import Feasible, Tracker

__all__ = [
    "Archive",
    "Entry",
    "Feasible",
    "RefineConfig",
    "Tracker",
    "nsga2",
    "random_search",
    "refine",
    "regularized_evolution",
    "sample_around",
]
