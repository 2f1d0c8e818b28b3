"""The NASWOT proxy of "Neural Architecture Search without Training" (arXiv 2006.04647)."""

from __future__ import annotations

import torch
from torch import nn

from nas.evaluate.proxies.layers import forward_with_hooks
from nas.evaluate.proxies.registry import proxy


@proxy("naswot", batch_size=128)
def naswot(
    net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None
) -> torch.Tensor:
    """Log-determinant of the binary-code kernel of the ReLUs (train mode, one batch).

    Every ``nn.ReLU`` turns its input into a binary code per image (unit > 0). The kernel
    ``K[i, j]`` counts the units where images ``i`` and ``j`` agree (the number of units minus
    their Hamming distance), summed over all ReLUs; the score is ``log|det K|`` (``-inf`` when
    ``K`` is singular, e.g. a network whose cells pass nothing). ``targets`` is ignored.
    """
    b = len(inputs)
    kernel = torch.zeros(b, b, dtype=torch.float64, device=inputs.device)

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        # the output's sign pattern equals the input's, and survives an in-place ReLU
        codes = (out.detach().reshape(b, -1) > 0).float()
        agree_on = codes @ codes.T
        ones = codes.sum(1)
        units = codes.shape[1]
        kernel.add_((2 * agree_on - ones[:, None] - ones[None, :] + units).double())

    forward_with_hooks(net, inputs, (m for m in net.modules() if isinstance(m, nn.ReLU)), hook)
    return torch.linalg.slogdet(kernel).logabsdet
