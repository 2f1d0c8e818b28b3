"""Parameters and FLOPs of single-path networks, from per-op tables: no network per arch.

A single-path network (:func:`~nas.export.subnet.build_subnet`) is the supernet's fixed part
(stem, cell preprocessing, reduction blocks, head) plus the chosen op of each kept edge. The
tables hold each op's parameters and FLOPs on its edge (FLOPs of one image, from
``torch.utils.flop_counter``, which counts convolutions and matrix products), so a cost is a
sum and the constraints of a search cost microseconds per arch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas.spaces import Arch, SearchSpace, searchable_cells
from nas.supernet import MixedOp, build_supernet

_PLAIN = {"lean": False, "channels_last": False, "compile": False}


def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``net(x)`` (convolutions and matrix products), counted by torch."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return int(counter.get_total_flops())


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


class CostModel:
    """``params(arch)`` and ``flops(arch)`` of ``arch``'s single-path network at the size of the
    supernet built with ``supernet_options``, for ``image_size`` x ``image_size`` inputs."""

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int,
        in_channels: int,
        image_size: int,
        supernet_options: Mapping[str, Any],
    ) -> None:
        self.space = space
        supernet = build_supernet(space, num_classes, in_channels, **{**supernet_options, **_PLAIN})
        supernet.eval()
        mixed = {name: m for name, m in supernet.named_modules() if isinstance(m, MixedOp)}
        inputs: dict[str, torch.Size] = {}

        def record(name: str):
            def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
                inputs[name] = args[0].shape

            return hook

        hooks = [m.register_forward_pre_hook(record(name)) for name, m in mixed.items()]
        ones = {k: torch.ones(e, len(space.op_names)) for k, e in space.cell_edges.items()}
        x = torch.zeros(1, in_channels, image_size, image_size)
        total_flops = count_flops(lambda t: supernet(t, ones), x)
        for h in hooks:
            h.remove()
        #: ``{(cell index, cell kind, edge): [(params, flops) per op]}``
        self.table: dict[tuple[int, str, int], list[tuple[int, int]]] = {}
        for i, cell, kind, edge_ids in searchable_cells(supernet.net):
            for e, m in zip(edge_ids, cell.edges, strict=True):
                name = next(n for n, mm in mixed.items() if mm is m)
                probe = torch.zeros(inputs[name])
                self.table[(i, kind, e)] = [
                    (count_params(op), count_flops(op, probe)) for op in m.ops
                ]
        op_params = sum(count_params(m) for m in mixed.values())
        self.base_params = count_params(supernet) - op_params
        self.base_flops = total_flops - sum(f for row in self.table.values() for _, f in row)

    def _chosen(self, arch: Arch) -> list[tuple[int, int]]:
        weights = self.space.one_hot(arch)
        return [row[int(weights[kind][e].argmax())] for (_, kind, e), row in self.table.items()]

    def params(self, arch: Arch) -> int:
        return self.base_params + sum(p for p, _ in self._chosen(arch))

    def flops(self, arch: Arch) -> int:
        return self.base_flops + sum(f for _, f in self._chosen(arch))
