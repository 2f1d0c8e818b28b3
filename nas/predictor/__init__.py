"""Score predictors over architecture encodings: the delta (difference) predictor of Delta-NAS
(arXiv 2411.14498) and an absolute baseline."""

from nas.predictor.absolute import AbsolutePredictor
from nas.predictor.base import Prediction, Predictor
from nas.predictor.delta import DeltaPredictor
from nas.predictor.encoding import ArchEncoder, changed_rows
from nas.predictor.factory import PREDICTORS, build_predictor, load_predictor, save_predictor
from nas.predictor.models import TrainConfig
from nas.predictor.pairs import weighted_pairs

__all__ = [
    "PREDICTORS",
    "AbsolutePredictor",
    "ArchEncoder",
    "DeltaPredictor",
    "Prediction",
    "Predictor",
    "TrainConfig",
    "build_predictor",
    "changed_rows",
    "load_predictor",
    "save_predictor",
    "weighted_pairs",
]
