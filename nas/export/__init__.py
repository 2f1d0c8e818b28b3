"""The final model and report: ``final.json``, ``subnet.pt`` (standalone network with
inherited weights), ONNX, parameters and FLOPs, ``summary.md`` and ``plots/``."""

from nas.export.cost import CostModel, count_flops, count_params
from nas.export.report import accuracy, export_final
from nas.export.subnet import build_subnet, load_subnet, save_subnet

__all__ = [
    "CostModel",
    "accuracy",
    "build_subnet",
    "count_flops",
    "count_params",
    "export_final",
    "load_subnet",
    "save_subnet",
]
