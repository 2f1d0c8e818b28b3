"""The jacov proxy of "Neural Architecture Search without Training" (arXiv 2006.04647, first
version), as evaluated in "Zero-Cost Proxies for Lightweight NAS" (arXiv 2101.08134)."""

from __future__ import annotations

import torch
from torch import nn

from nas.evaluate.proxies.registry import proxy


@proxy("jacov", grad=True)
def jacov(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    k: float = 1e-5,
) -> torch.Tensor:
    """Jacobian covariance: how uncorrelated the input gradients of different images are.

    ``J[i] = d sum(f(x_i)) / d x_i`` (train mode, one batch), flattened per image; with
    ``lambda`` the eigenvalues of the correlation matrix of the rows of ``J``, the score is
    ``-sum(log(lambda + k) + 1 / (lambda + k))`` (float64). NaN when some image's gradient is
    constant (e.g. zero). ``targets`` is ignored.
    """
    nan = torch.full((), float("nan"), dtype=torch.float64, device=inputs.device)
    x = inputs.detach().clone().requires_grad_(True)
    net.train()
    net.zero_grad()
    out = net(x)
    (jac,) = torch.autograd.grad(out, x, torch.ones_like(out), allow_unused=True)
    if jac is None:  # the output does not depend on the input
        return nan
    corr = torch.corrcoef(jac.reshape(len(x), -1).double())
    if not torch.isfinite(corr).all():
        return nan
    eig = torch.linalg.eigvalsh(corr)
    return -(torch.log(eig + k) + 1.0 / (eig + k)).sum()
