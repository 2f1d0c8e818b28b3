"""Search spaces: candidate ops, architectures, codecs, neighbourhoods, encodings, networks."""

from nas.spaces.base import (
    Arch,
    ArchError,
    OpWeights,
    SearchSpace,
    available_spaces,
    get_space,
    searchable_cells,
)
from nas.spaces.darts import DARTS_OPS, DartsSpace, Genotype
from nas.spaces.mbv3 import MBV3_OPS, MBV3Space
from nas.spaces.nb201 import NB201_OPS, NB201Space

__all__ = [
    "DARTS_OPS",
    "MBV3_OPS",
    "NB201_OPS",
    "Arch",
    "ArchError",
    "DartsSpace",
    "Genotype",
    "MBV3Space",
    "NB201Space",
    "OpWeights",
    "SearchSpace",
    "available_spaces",
    "get_space",
    "searchable_cells",
]
