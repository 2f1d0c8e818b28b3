"""Search strategies: they own the architecture parameters and choose each step's op weights.

A strategy is an ``nn.Module`` registered on the LightningModule (so checkpoints hold its
parameters and state) and kept apart from the supernet's weights by construction: the
weight optimiser is built from ``supernet.parameters()``, the architecture optimiser from
``strategy.arch_parameters()``. Each strategy lives in its own module of ``nas.search`` and
registers a factory ``factory(space, search_cfg, supernet) -> Strategy`` under its
``search.strategy`` name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import ConfigError
from nas.spaces import Arch, OpWeights, SearchSpace
from nas.supernet import Supernet

Batch = tuple[torch.Tensor, torch.Tensor]
Backward = Callable[[torch.Tensor], None]


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in fp32 at least (fp16/bf16 architecture parameters are computed in fp32)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Build no gradient graph for ``module``'s parameters inside the block.

    An architecture step needs only d(loss)/d(alpha); with the supernet's weights frozen,
    autograd skips every weight gradient (the depthwise ones dominate a step's cost) instead
    of computing them to be zeroed before the weight step.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Strategy(nn.Module):
    """Base strategy. Subclasses define the op weights of each step and the arch loss.

    The module calls :meth:`set_epoch` at the start of every training epoch (schedules such
    as a temperature or a regulariser's weight follow it), then per step
    :meth:`arch_backward` (when :meth:`arch_parameters` is not empty and the warm-up is over)
    and :meth:`train_paths` for the weight step.
    """

    #: whether a step can be captured as a CUDA graph (``search.cuda_graph``): the op weights
    #: are a function of the parameters computed on their device with none exactly zero (so
    #: :meth:`active_ops` knows every op runs without reading them), and the arch step is
    #: :meth:`arch_backward`'s one plain backward; every value that changes between steps (a
    #: schedule's) lives in a device tensor, which a replayed graph reads as it stands.
    graph_safe: ClassVar[bool] = False
    #: whether the training paths after the first learn the first path's predictions
    #: instead of the labels (in-place distillation)
    distills: bool = False

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space
        self.epoch, self.epochs = 0, 1

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Where the search is: epoch ``epoch`` (0-based) of ``epochs``."""
        self.epoch, self.epochs = epoch, max(epochs, 1)

    @property
    def progress(self) -> float:
        """0 at the first epoch, 1 at the last."""
        return self.epoch / max(self.epochs - 1, 1)

    def arch_parameters(self) -> list[nn.Parameter]:
        """Parameters the architecture optimiser updates (empty: no architecture step)."""
        return list(self.parameters())

    def probabilities(self) -> dict[str, torch.Tensor]:
        """The strategy's belief over each edge's ops, ``{kind: [edges, ops]}``; fp32, rows
        sum to 1 (diagnostics and ``alphas.jsonl`` read it)."""
        raise NotImplementedError

    def op_weights(self) -> dict[str, torch.Tensor]:
        """The differentiable op weights the supernet runs with in the arch step (default:
        :meth:`probabilities`)."""
        return self.probabilities()

    def derivation_weights(self) -> dict[str, torch.Tensor]:
        """What ``space.derive`` reads to give the strategy's architecture."""
        return {k: w.detach() for k, w in self.op_weights().items()}

    @property
    def derives(self) -> bool:
        """Whether the strategy points at an architecture: it has architecture parameters.
        Single-path strategies do not (their probabilities are uniform, whose argmax is no
        choice but the first op of each edge)."""
        return bool(self.arch_parameters())

    def derived(self) -> Arch:
        """The architecture the strategy points at: ``space.derive`` of
        :meth:`derivation_weights` (only when :attr:`derives`)."""
        if not self.derives:
            raise ValueError("a strategy without architecture parameters derives no arch")
        return self.space.derive({k: w.cpu() for k, w in self.derivation_weights().items()})

    def active_ops(self) -> dict[str, list[list[bool]]] | None:
        """Which ops of each edge run, ``{kind: [edges][ops]}`` host booleans, where the strategy
        knows it without reading its weights (:attr:`graph_safe`: all of them); ``None``: the
        supernet reads it from the weights (a device-to-host wait). Built once."""
        return self._every_op if self.graph_safe else None

    @cached_property
    def _every_op(self) -> dict[str, list[list[bool]]]:
        n_ops = len(self.space.op_names)
        return {k: [[True] * n_ops for _ in range(e)] for k, e in self.space.cell_edges.items()}

    def train_paths(self) -> list[OpWeights]:
        """The op weights of this weight step; the gradients of the paths' losses are summed
        into one update (no gradient reaches the architecture)."""
        return [{k: w.detach() for k, w in self.op_weights().items()}]

    def eval_weights(self) -> OpWeights:
        """Op weights for validating the supernet."""
        return {k: w.detach() for k, w in self.op_weights().items()}

    def arch_loss(
        self, supernet: Supernet, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor | None:
        """Loss whose gradient updates :meth:`arch_parameters`; ``None``: no arch step."""
        return None

    def arch_backward(
        self,
        supernet: Supernet,
        train: Batch,
        arch: Batch,
        backward: Backward,
        weight_optimizer: torch.optim.Optimizer,
    ) -> torch.Tensor | None:
        """Put the architecture gradient into ``.grad`` of :meth:`arch_parameters` and return
        the loss to log. Default: the first-order gradient of :meth:`arch_loss` on the
        ``arch`` batch at the current weights (which stay untouched)."""
        with frozen(supernet):
            loss = self.arch_loss(supernet, *arch)
            if loss is not None:
                backward(loss)
        return loss


def beta_decay(alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """β-decay regulariser ("β-DARTS: Beta-Decay Regularization for Differentiable
    Architecture Search", arXiv 2203.01665): the mean over edges of ``logsumexp(alpha)``,
    whose gradient ``softmax(alpha)`` decays the large architecture parameters most."""
    return torch.cat([torch.logsumexp(wide(a), dim=-1) for a in alphas.values()]).mean()


class DartsStrategy(Strategy):
    """First-order DARTS ("DARTS: Differentiable Architecture Search", arXiv 1806.09055).

    One alpha matrix ``[edges, ops]`` per cell kind, initialised ``alpha_init_std * N(0, 1)``;
    op weights are ``softmax(alpha)`` over ops, computed in fp32 (or wider) even under autocast. The
    architecture gradient is the gradient of the validation loss at the current weights
    (the first-order approximation). ``beta_weight`` > 0 adds :func:`beta_decay`, its weight
    rising linearly from 0 at the first epoch to ``beta_weight`` at the last.
    """

    graph_safe = True

    def __init__(
        self, space: SearchSpace, alpha_init_std: float = 1e-3, beta_weight: float = 0.0
    ) -> None:
        super().__init__(space)
        self.alphas = _alpha_matrices(space, alpha_init_std)
        self.beta_weight = beta_weight
        # the β-decay term's weight of the current epoch, a tensor for CUDA graphs to read
        self.register_buffer("beta_ramp", torch.zeros(()), persistent=False)

    def set_epoch(self, epoch: int, epochs: int) -> None:
        super().set_epoch(epoch, epochs)
        self.beta_ramp.fill_(self.beta_weight * self.progress)

    def _fp32(self) -> torch.autocast:
        device = next(iter(self.alphas.values())).device.type
        return torch.autocast(device_type=device, enabled=False)

    def probabilities(self) -> dict[str, torch.Tensor]:
        with self._fp32():
            return {k: F.softmax(wide(a), dim=-1) for k, a in self.alphas.items()}

    def regularizer(self) -> torch.Tensor | None:
        """The strategy's term added to the architecture loss (``None``: none)."""
        if not self.beta_weight:
            return None
        return self.beta_ramp * beta_decay(self.alphas)

    def arch_loss(self, supernet: Supernet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(supernet(x, self.op_weights(), self.active_ops()), y)
        reg = self.regularizer()
        return loss if reg is None else loss + reg


def _alpha_matrices(space: SearchSpace, std: float) -> nn.ParameterDict:
    n_ops = len(space.op_names)
    return nn.ParameterDict(
        {k: nn.Parameter(std * torch.randn(e, n_ops)) for k, e in space.cell_edges.items()}
    )


Factory = Callable[[SearchSpace, Mapping[str, Any], Supernet | None], Strategy]
_STRATEGIES: dict[str, Factory] = {}


def register_strategy(name: str, factory: Factory) -> None:
    """Register ``factory(space, search_cfg, supernet)`` as ``search.strategy=name``."""
    _STRATEGIES[name] = factory


register_strategy(
    "darts",
    lambda space, cfg, _: DartsStrategy(space, cfg["alpha_init_std"], cfg.get("beta_weight", 0.0)),
)


def available_strategies() -> list[str]:
    return sorted(_STRATEGIES)


def build_strategy(
    space: SearchSpace, cfg: Mapping[str, Any], supernet: Supernet | None = None
) -> Strategy:
    """The strategy named ``cfg["strategy"]`` (``search.strategy``) for ``supernet`` (which
    some strategies read, e.g. sandwich sampling its parameter counts); unknown names list
    the valid ones."""
    try:
        factory = _STRATEGIES[cfg["strategy"]]
    except KeyError:
        raise ConfigError(
            f"unknown search strategy {cfg['strategy']!r} (search.strategy); "
            f"known: {available_strategies()}"
        ) from None
    return factory(space, cfg, supernet)


class SeededDraws:
    """Mixin of strategies that draw at random: ``self.generator``, a CPU ``torch.Generator``
    seeded from the global seed at construction, whose state the checkpoint holds (so a
    resumed run draws what an uninterrupted one would)."""

    generator: torch.Generator

    def _init_draws(self) -> None:
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
