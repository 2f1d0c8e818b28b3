"""The standalone network of one architecture carrying the weights it inherits from a
supernet, and its file ``subnet.pt``.

The network has the supernet's skeleton and sizes (the space's network class, with the
supernet's ``space.supernet`` options) but a plain op on each edge of the arch: the op module
that the supernet's mixed op held, with its trained weights. ``forward(x) -> logits``. Its
BatchNorm statistics are those of the supernet until :func:`~nas.evaluate.recalibrate_bn`
re-estimates them for this path (as the one-shot evaluator does).

``subnet.pt`` is a plain dict (loadable with ``torch.load(..., weights_only=True)``):
``{"format": 1, "space": {"name", "subnet"}, "arch": str, "num_classes": int,
"in_channels": int, "supernet": {options}, "state_dict": {...}}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.errors import NasError
from nas.io import atomic_writer
from nas.spaces import Arch, SearchSpace, get_space, searchable_cells
from nas.supernet import MixedOp, build_supernet

SUBNET_FORMAT = 1
#: options that change how a supernet runs, never what it computes; a subnet runs plainly
_EXECUTION = {"backend": "plain", "channels_last": False, "compile": False}


def single_path(net: nn.Module, space: SearchSpace, arch: Arch) -> nn.Module:
    """Replace, in place, every mixed op of ``net`` by the op ``arch`` picks on its edge; drop
    the edges ``arch`` leaves out (rows whose op is ``none`` in a space whose cells choose
    their inputs); returns ``net``."""
    weights = space.one_hot(arch)
    none = space.op_names.index("none") if "none" in space.op_names else None
    for _, cell, kind, edge_ids in searchable_cells(net):
        keep, ops = [], []
        for k, e in enumerate(edge_ids):
            mixed: MixedOp = cell.edges[k]
            j = int(weights[kind][e].argmax())
            if j == none and hasattr(cell, "edge_ids"):
                continue
            keep.append(e)
            ops.append(mixed.single_op(j))
        cell.edges = nn.ModuleList(ops)
        if hasattr(cell, "edge_ids"):
            cell.edge_ids = tuple(keep)
        if hasattr(cell, "run_preprocess"):
            cell.run_preprocess = nn.Module.__call__
    return net


def build_subnet(
    space: SearchSpace,
    arch: Arch,
    num_classes: int,
    in_channels: int,
    supernet_options: Mapping[str, Any],
    supernet_state: Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:
    """The single-path network of ``arch`` at the supernet's size; with ``supernet_state`` (a
    :class:`~nas.supernet.Supernet` state dict) it carries the supernet's weights."""
    supernet = build_supernet(space, num_classes, in_channels, **{**supernet_options, **_EXECUTION})
    if supernet_state is not None:
        supernet.load_state_dict(supernet_state)
    return single_path(supernet.net, space, arch)


def save_subnet(
    path: str | os.PathLike[str],
    net: nn.Module,
    space: SearchSpace,
    space_cfg: Mapping[str, Any],
    arch: Arch,
    num_classes: int,
    in_channels: int,
) -> None:
    """Write ``net`` (from :func:`build_subnet`) and what rebuilds it to ``path`` (atomically)."""
    path = Path(path)
    record = {
        "format": SUBNET_FORMAT,
        "space": {"name": space.name, "subnet": dict(space_cfg.get("subnet") or {})},
        "arch": space.to_str(arch),
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
        "supernet": dict(space_cfg.get("supernet") or {}),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    with atomic_writer(path, "wb") as f:
        torch.save(record, f)


def load_subnet(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The network saved by :func:`save_subnet` (eval mode) and its record without the weights.

    Loads with ``weights_only=True``; a file that is not a subnet record names what is wrong.
    """
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise NasError(f"{path} is not a readable subnet file: {err}") from None
    if not isinstance(record, dict) or record.get("format") != SUBNET_FORMAT:
        raise NasError(f"{path} is not a subnet file of format {SUBNET_FORMAT}")
    space = get_space(record["space"]["name"], **record["space"]["subnet"])
    arch = space.from_str(record["arch"])
    net = build_subnet(
        space, arch, record["num_classes"], record["in_channels"], record["supernet"]
    )
    net.load_state_dict(record["state_dict"])
    net.eval()
    return net, {k: v for k, v in record.items() if k != "state_dict"}
