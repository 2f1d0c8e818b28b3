"""One-shot neural architecture search on PyTorch Lightning and Hydra.

``nas.load_subnet(path)`` rebuilds an exported ``subnet.pt`` (weights only, no pickles).
"""

from typing import Any

__all__ = ["load_subnet"]


def __getattr__(name: str) -> Any:  # lazy: importing a submodule does not load every part
    if name == "load_subnet":
        from nas.export.subnet import load_subnet

        return load_subnet
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
