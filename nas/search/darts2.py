"""Second-order (unrolled) DARTS ("DARTS: Differentiable Architecture Search", arXiv 1806.09055).

The architecture gradient is that of the validation loss after one virtual SGD step of the
weights, ``w' = w - xi * (m + grad_w L_train(w, alpha) + wd * w)`` (``m``: the weight
optimiser's momentum term, ``wd`` its weight decay, ``xi`` the weight learning rate unless
``search.xi`` is set):

    grad_alpha L_val(w', alpha) - xi * H grad_w' L_val(w', alpha),  H = d2 L_train / (d alpha d w),

with the Hessian-vector product taken by central finite differences at ``w +- eps * v``,
``v = grad_w' L_val``, ``eps = 0.01 / ||v||``. The weights, the BatchNorm statistics and the
optimiser's state are exactly as before the step when it returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from nas.search.strategies import Backward, Batch, DartsStrategy, frozen, register_strategy
from nas.spaces import SearchSpace
from nas.supernet import Supernet


def average_over_ranks(tensors: list[torch.Tensor]) -> None:
    """Average ``tensors`` in place over the ranks of a data-parallel run (no-op otherwise):
    the hypergradient is computed with ``autograd.grad``, outside DDP's gradient hooks, so
    without this each rank would step its alphas by its own batch's estimate."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for t in tensors:
        dist.all_reduce(t)
        t.div_(dist.get_world_size())


@contextmanager
def restored(supernet: Supernet) -> Iterator[list[torch.Tensor]]:
    """Inside: change the weights and buffers at will; afterwards they hold their values from
    before the block (copies, not arithmetic: bit for bit). Yields the weights' saved values."""
    params = [p for p in supernet.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    buffers = [b.detach().clone() for b in supernet.buffers()]
    try:
        yield saved
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
            for b, s in zip(supernet.buffers(), buffers, strict=True):
                b.copy_(s)


class SecondOrderDartsStrategy(DartsStrategy):
    """DARTS with the unrolled architecture gradient (see the module docstring)."""

    graph_safe = False  # its arch step is a virtual step of the weights and three backwards

    def __init__(
        self,
        space: SearchSpace,
        alpha_init_std: float = 1e-3,
        beta_weight: float = 0.0,
        xi: float | None = None,
    ) -> None:
        super().__init__(space, alpha_init_std, beta_weight)
        self.xi = xi

    def arch_backward(
        self,
        supernet: Supernet,
        train: Batch,
        arch: Batch,
        backward: Backward,
        weight_optimizer: torch.optim.Optimizer,
    ) -> torch.Tensor:
        group = weight_optimizer.param_groups[0]
        xi = group["lr"] if self.xi is None else self.xi
        params = [p for p in supernet.parameters() if p.requires_grad]
        alphas = self.arch_parameters()
        (xt, yt), (xa, ya) = train, arch
        with restored(supernet) as w0:
            weights = {k: w.detach() for k, w in self.op_weights().items()}
            grads = torch.autograd.grad(F.cross_entropy(supernet(xt, weights), yt), params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    step = g + group.get("weight_decay", 0.0) * p
                    buf = weight_optimizer.state.get(p, {}).get("momentum_buffer")
                    if buf is not None:
                        step = step + group.get("momentum", 0.0) * buf
                    p.sub_(xi * step)
            loss = self.arch_loss(supernet, xa, ya)
            grads = torch.autograd.grad(loss, [*alphas, *params])
            d_alpha, v = grads[: len(alphas)], grads[len(alphas) :]
            hessian = self._hessian_vector(supernet, params, w0, v, train)
        for a, d, h in zip(alphas, d_alpha, hessian, strict=True):
            a.grad = d - xi * h
        average_over_ranks([a.grad for a in alphas])
        return loss.detach()

    def _hessian_vector(
        self,
        supernet: Supernet,
        params: list[torch.Tensor],
        w0: list[torch.Tensor],
        v: tuple[torch.Tensor, ...],
        train: Batch,
    ) -> list[torch.Tensor]:
        """``d/d alpha (v . grad_w L_train)`` at ``w0`` by central differences."""
        eps = 0.01 / torch.cat([g.flatten() for g in v]).norm().clamp_min(1e-12)
        x, y = train
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, w, g in zip(params, w0, v, strict=True):
                    p.copy_(w + sign * eps * g)
            with frozen(supernet):
                loss = F.cross_entropy(supernet(x, self.op_weights()), y)
                sides.append(torch.autograd.grad(loss, self.arch_parameters()))
        return [(gp - gn) / (2 * eps) for gp, gn in zip(*sides, strict=True)]


def _factory(space: SearchSpace, cfg: Mapping[str, Any], _: Supernet | None) -> DartsStrategy:
    return SecondOrderDartsStrategy(
        space, cfg["alpha_init_std"], cfg.get("beta_weight", 0.0), cfg.get("xi")
    )


register_strategy("darts2", _factory)
