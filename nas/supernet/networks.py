"""Supernets: each space's skeleton with a :class:`MixedOp` on every edge.

``supernet(x, weights)`` takes op weights ``{cell_kind: Tensor[edges, ops]}`` (see
``nas.spaces.base``) and returns logits ``[B, num_classes]``. Which weights are exactly zero is
read once per forward (one host transfer per cell kind), so ops with zero weight are skipped.

Execution options shared by every space (``space.supernet`` config keys), none of which
changes the function computed:

* ``backend`` (default ``auto``): ``lean`` runs the ops through their lean forwards
  (:mod:`nas.supernet.lean_ops`): fewer bytes and FLOPs, more and smaller kernels, which wins
  on a few CPU cores; ``plain`` runs each op's own modules (:mod:`nas.supernet.plain_ops`:
  cuDNN's convolutions, fewest kernel launches), which wins on a GPU; ``auto`` picks ``plain``
  where the run trains on CUDA and ``lean`` elsewhere (:func:`resolve_backend`). Both do the
  work that a cell's edges do on one state once (:mod:`nas.supernet.shared`). ``grouped``
  (DARTS only) is ``plain`` with a state's out-edges' convolution ops run as one grouped op
  each (:mod:`nas.supernet.grouped`: fewer, larger kernels);
* ``channels_last`` (default True): parameters and activations in the channels-last layout;
* ``compile`` (default False): the network is wrapped by ``torch.compile``: ``true`` (its
  default mode), a mode name (``reduce-overhead``: Inductor's kernels replayed as CUDA graphs)
  or ``cudagraphs`` (torch's ``cudagraphs`` backend: the traced forward and backward replayed
  as CUDA graphs, no code generation, so it compiles in seconds). CUDA graphs remove the
  kernel-launch overhead that bounds a supernet step on a GPU; a new set of active ops (a new
  single path) is a new graph, so they pay for strategies whose active ops stay the same.

``partial_channels`` (default 1) does change it: every edge runs its ops on ``1/k`` of its
channels (PC-DARTS, :mod:`nas.supernet.partial`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from nas.spaces import DartsSpace, MBV3Space, NB201Space, OpWeights, SearchSpace
from nas.spaces.darts import DARTS_EDGES, DartsCell, DartsNetwork
from nas.spaces.mbv3 import MBV3Network
from nas.spaces.nb201 import NB201Network
from nas.supernet.elastic import ElasticBlock
from nas.supernet.grouped import GroupedDartsCell
from nas.supernet.lean_ops import lean_forward
from nas.supernet.mixed_op import MixedOp
from nas.supernet.plain_ops import plain_forward
from nas.supernet.shared import SharedWork


class Supernet(nn.Module):
    """A space's network whose edges are mixed ops; ``forward(x, weights) -> logits``."""

    def __init__(self, space: SearchSpace, net: nn.Module, channels_last: bool = False) -> None:
        super().__init__()
        self.space = space
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.channels_last = channels_last

    def forward(
        self,
        x: torch.Tensor,
        weights: OpWeights,
        active: Mapping[str, list[list[bool]]] | None = None,
    ) -> torch.Tensor:
        """``active``: ``weights != 0`` per cell kind as host booleans, when the caller knows
        it (dense softmax weights: all true); ``None`` reads it from ``weights``, which waits
        for the device (and cannot happen inside a CUDA-graph capture)."""
        self.space.check_weights(weights)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if active is None:
            active = {k: (w != 0).cpu().tolist() for k, w in weights.items()}
        if len(weights) == 1:  # one cell kind: the network takes per-edge args directly
            (kind,) = weights
            return self.net(x, weights[kind], active[kind])
        return self.net(x, weights, active)


def _darts(space: DartsSpace, num_classes: int, in_channels: int, **kw: object) -> Supernet:
    c, layers = int(kw.pop("c", 16)), int(kw.pop("layers", 8))
    affine, track = _bn_options(kw)
    stem_multiplier = int(kw.pop("stem_multiplier", 3))
    partial_k = int(kw.pop("partial_channels", 1))
    execution = _execution_options(kw)
    _no_more(kw, "darts")
    edge_ids = range(len(DARTS_EDGES))
    shared = SharedWork()

    def cell_edges(kind: str):
        def make(c_: int, stride: int, e: int) -> MixedOp:
            return MixedOp(
                space.op_names, c_, stride, affine, track, True, execution.lean, shared, partial_k
            )

        return make, edge_ids, (2, 3, 4, 5)

    net = DartsNetwork(
        cell_edges,
        num_classes,
        in_channels,
        c=c,
        layers=layers,
        stem_multiplier=stem_multiplier,
        affine=affine,
        run_preprocess=partial(lean_forward if execution.lean else plain_forward, shared=shared),
        cell_class=GroupedDartsCell if execution.backend == "grouped" else DartsCell,
    )
    return execution.wrap(space, net, shared)


def _nb201(space: NB201Space, num_classes: int, in_channels: int, **kw: object) -> Supernet:
    c, n_cells = int(kw.pop("c", 16)), int(kw.pop("n_cells", 5))
    affine, track = _bn_options(kw)
    partial_k = int(kw.pop("partial_channels", 1))
    execution = _execution_options(kw)
    _no_more(kw, "nb201")
    if execution.backend == "grouped":
        raise ValueError(
            "space.supernet.backend=grouped runs DARTS cells (space=darts); for nb201 use plain"
        )
    shared = SharedWork()
    net = NB201Network(
        lambda c_, e: MixedOp(
            space.op_names, c_, 1, affine, track, False, execution.lean, shared, partial_k
        ),
        num_classes,
        in_channels,
        c=c,
        n_cells=n_cells,
    )
    return execution.wrap(space, net, shared)


def _mbv3(space: MBV3Space, num_classes: int, in_channels: int, **kw: object) -> Supernet:
    sizes = {k: kw.pop(k) for k in ("widths", "strides", "stem", "stem_stride", "head") if k in kw}
    try:
        skeleton = MBV3Space(**sizes)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"space.supernet: {err}") from None
    if skeleton.n_blocks != space.n_blocks:
        raise ValueError(
            f"space.supernet.widths has {len(skeleton.widths)} stages and space.subnet.widths "
            f"{len(space.widths)}: an mbv3 arch needs the same stages in both"
        )
    transform = bool(kw.pop("kernel_transform", False))
    execution = _execution_options(kw)  # no lean ops: the blocks run as they are
    _no_more(kw, "mbv3")
    net = MBV3Network(
        lambda c_in, c_out, stride, act, se, e: ElasticBlock(
            space.op_names, c_in, c_out, stride, act, se, transform
        ),
        num_classes,
        in_channels,
        skeleton,
    )
    return execution.wrap(space, net, None)


#: the ``space.supernet.backend`` values
BACKENDS = ("auto", "lean", "plain", "grouped")
#: the ``space.supernet.compile`` values besides ``false`` and ``true``
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPHS = "cudagraphs"


def resolve_backend(backend: str, cuda: bool | None = None) -> str:
    """``backend`` with ``auto`` made concrete: ``plain`` when the network trains on CUDA
    (``cuda``; ``None``: whether CUDA is available), ``lean`` otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"space.supernet.backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    return "plain" if (torch.cuda.is_available() if cuda is None else cuda) else "lean"


@dataclass(frozen=True)
class _Execution:
    """How a supernet runs (see the module docstring); never what it computes."""

    backend: str
    channels_last: bool
    compile: bool | str

    @property
    def lean(self) -> bool:
        return self.backend == "lean"

    def wrap(self, space: SearchSpace, net: nn.Module, shared: SharedWork | None) -> Supernet:
        """The supernet of ``net``; ``shared`` is scoped to each of ``net.cells``."""
        if shared is not None:
            shared.scope(net.cells)
        supernet = Supernet(space, net, channels_last=self.channels_last)
        if self.compile == CUDAGRAPHS:
            supernet.net.compile(backend=CUDAGRAPHS)
        elif self.compile is True:
            supernet.net.compile()
        elif self.compile:
            supernet.net.compile(mode=self.compile)
        return supernet


def _bn_options(kw: dict[str, object]) -> tuple[bool, bool]:
    """``(affine, track_running_stats)`` of the supernet's BatchNorms (search default: no affine)."""
    return bool(kw.pop("affine", False)), bool(kw.pop("track_running_stats", True))


def _execution_options(kw: dict[str, object]) -> _Execution:
    compile_ = kw.pop("compile", False)
    if not isinstance(compile_, bool) and compile_ not in (*COMPILE_MODES, CUDAGRAPHS):
        raise ValueError(
            f"space.supernet.compile must be true, false, {CUDAGRAPHS!r} or a torch.compile mode "
            f"{COMPILE_MODES}, got {compile_!r}"
        )
    return _Execution(
        backend=resolve_backend(str(kw.pop("backend", "auto"))),
        channels_last=bool(kw.pop("channels_last", True)),
        compile=compile_,
    )


def _no_more(kw: Mapping[str, object], space: str) -> None:
    if kw:
        raise TypeError(
            f"unknown supernet option(s) {sorted(kw)} for space {space!r} (space.supernet)"
        )


_BUILDERS: dict[type, Callable[..., Supernet]] = {
    DartsSpace: _darts,
    NB201Space: _nb201,
    MBV3Space: _mbv3,
}


def build_supernet(
    space: SearchSpace, num_classes: int, in_channels: int = 3, **options: object
) -> Supernet:
    """The supernet of ``space``; ``options`` are the ``space.supernet`` config keys."""
    for cls, builder in _BUILDERS.items():
        if isinstance(space, cls):
            return builder(space, num_classes, in_channels, **dict(options))
    raise KeyError(f"no supernet builder for space {space.name!r}")
