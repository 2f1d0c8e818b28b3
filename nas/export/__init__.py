"""The final model and report: ``final.json``, ``subnet.pt`` (standalone network with
inherited weights), ONNX, ``summary.md`` and ``plots/`` (sizes and latency from :mod:`nas.cost`)."""

from nas.export.report import accuracy, export_final
from nas.export.subnet import build_subnet, load_subnet, save_subnet

__all__ = [
    "accuracy",
    "build_subnet",
    "export_final",
    "load_subnet",
    "save_subnet",
]
