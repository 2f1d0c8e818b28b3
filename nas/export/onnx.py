"""``subnet.onnx``: the exported network, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn


def export_onnx(net: nn.Module, x: torch.Tensor, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Export ``net`` (eval mode) for inputs shaped like ``x`` (dynamic batch) to ``path``, run
    ``x`` through onnxruntime and compare with PyTorch. Returns ``{"file", "max_abs_diff",
    "opset"}``. Needs the ``export`` extra (onnx, onnxruntime)."""
    import onnxruntime

    net = copy.deepcopy(net).cpu().eval()
    x = x.cpu()
    opset = 17
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding
        expected = net(x)
        torch.onnx.export(
            net,
            (x,),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"images": x.numpy()})
    diff = float(np.abs(got - expected.numpy()).max())
    return {"file": os.path.basename(path), "max_abs_diff": diff, "opset": opset}
