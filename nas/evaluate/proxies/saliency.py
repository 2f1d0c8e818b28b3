"""Loss-gradient saliency proxies at initialisation: snip and grad_norm, as evaluated for NAS
in "Zero-Cost Proxies for Lightweight NAS" (arXiv 2101.08134)."""

from __future__ import annotations

import torch
from torch import nn

from nas.evaluate.proxies.layers import weight_layers
from nas.evaluate.proxies.registry import proxy


def _loss_gradients(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> list[nn.Module]:
    """Back-propagate the cross-entropy of one batch (train mode); the conv/linear layers."""
    net.train()
    net.zero_grad()
    nn.functional.cross_entropy(net(inputs), targets).backward()
    return [m for m in weight_layers(net) if m.weight.grad is not None]


@proxy("snip", labels=True, grad=True)
def snip(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """SNIP connection sensitivity ("SNIP: Single-shot Network Pruning based on Connection
    Sensitivity", arXiv 1810.02340): ``sum over conv/linear weights of |w * dL/dw|``."""
    layers = _loss_gradients(net, inputs, targets)
    zero = torch.zeros((), device=inputs.device)
    return sum(((m.weight * m.weight.grad).abs().sum() for m in layers), zero)


@proxy("grad_norm", labels=True, grad=True)
def grad_norm(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient norm: ``sum over conv/linear layers of ||dL/dW||_2`` (per-layer Euclidean
    norms of the cross-entropy gradient, summed)."""
    layers = _loss_gradients(net, inputs, targets)
    return sum((m.weight.grad.norm() for m in layers), torch.zeros((), device=inputs.device))
