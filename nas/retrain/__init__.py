"""Training a found architecture from scratch (the DARTS evaluation recipe)."""

from nas.retrain.module import RetrainModule
from nas.retrain.network import AuxiliaryHead, RetrainNetwork, add_drop_path

__all__ = ["AuxiliaryHead", "RetrainModule", "RetrainNetwork", "add_drop_path"]
