"""The synflow proxy of "Pruning neural networks without any data by iteratively conserving
synaptic flow" (arXiv 2006.05467), used as a zero-cost NAS proxy in "Zero-Cost Proxies for
Lightweight NAS" (arXiv 2101.08134)."""

from __future__ import annotations

import torch
from torch import nn

from nas.evaluate.proxies.layers import remove_batchnorm, weight_layers
from nas.evaluate.proxies.registry import proxy


@proxy("synflow", grad=True, batch_size=None)
def synflow(
    net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None
) -> torch.Tensor:
    """Synaptic flow: ``sum over conv/linear weights of |w * dR/dw|`` with ``R = sum(f(1))``.

    The network is made linear in its weights' magnitudes: BatchNorm layers are removed, every
    parameter and buffer is replaced by its absolute value and everything runs in float64 (the
    product over layers overflows float32). The input is a single all-ones image of the
    batch's shape; the data and ``targets`` are not used. Always >= 0.
    """
    net = remove_batchnorm(net).double().eval()
    with torch.no_grad():
        for t in net.state_dict().values():
            t.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    net.zero_grad()
    net(ones).sum().backward()
    return sum(
        (
            (m.weight * m.weight.grad).abs().sum()
            for m in weight_layers(net)
            if m.weight.grad is not None
        ),
        torch.zeros((), dtype=torch.float64, device=inputs.device),
    )
