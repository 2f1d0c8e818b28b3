"""Supernets: mixed ops and the weight-sharing networks of each space."""

from nas.supernet.mixed_op import MixedOp
from nas.supernet.networks import Supernet, build_supernet, resolve_backend

__all__ = ["MixedOp", "Supernet", "build_supernet", "resolve_backend"]
