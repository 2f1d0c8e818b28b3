"""The network a found architecture is retrained as: the space's standalone network plus the
DARTS evaluation recipe's drop path and auxiliary head ("DARTS: Differentiable Architecture
Search", arXiv 1806.09055, section 3.3 / its evaluation code)."""

from __future__ import annotations

import torch
from timm.layers import DropPath
from torch import nn

from nas.spaces import searchable_cells


def add_drop_path(net: nn.Module) -> list[DropPath]:
    """Wrap every cell edge's op (identities excepted, as in DARTS) as ``op -> DropPath``; a
    residual block with its own drop path (timm's, the ``mbv3`` space) gets that one set on
    its branch instead, never on its shortcut (blocks without a shortcut get none). Returns
    the DropPath modules, whose ``drop_prob`` the trainer raises over the epochs."""
    paths = []
    for _, cell, _, _ in searchable_cells(net):
        for k, op in enumerate(cell.edges):
            if isinstance(op, nn.Identity):
                continue
            if hasattr(op, "drop_path"):
                if op.has_skip:
                    op.drop_path = DropPath(0.0)
                    paths.append(op.drop_path)
                continue
            path = DropPath(0.0)
            cell.edges[k] = nn.Sequential(op, path)
            paths.append(path)
    return paths


class AuxiliaryHead(nn.Module):
    """The DARTS CIFAR auxiliary classifier on a late feature map ``[B, C, H, W] -> [B, classes]``
    (pooling to 2x2 adaptively, which is DARTS' 5x5/3 pooling on its 8x8 maps)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class RetrainNetwork(nn.Module):
    """``net`` (a standalone network with ``cells``) with drop path on its edges and, when
    ``auxiliary``, an auxiliary head on the output of the cell at 2/3 depth.

    ``forward(x)`` returns logits; in training mode with the head, ``(logits, aux_logits)``.
    """

    def __init__(self, net: nn.Module, num_classes: int, auxiliary: bool) -> None:
        super().__init__()
        self.net = net
        self.drop_paths = add_drop_path(net)
        self.aux_head: AuxiliaryHead | None = None
        self._aux_in: torch.Tensor | None = None
        if auxiliary:
            cell = net.cells[2 * len(net.cells) // 3]
            with torch.no_grad():
                channels = self._channels_after(cell)
            self.aux_head = AuxiliaryHead(channels, num_classes)
            cell.register_forward_hook(self._keep)

    def _channels_after(self, cell: nn.Module) -> int:
        probe: dict[str, int] = {}

        def record(module: nn.Module, args: object, out: torch.Tensor) -> None:
            probe["c"] = out.shape[1]

        handle = cell.register_forward_hook(record)
        was = self.net.training
        self.net.eval()
        first = next(m for m in self.net.modules() if isinstance(m, nn.Conv2d))
        self.net(torch.zeros(1, first.in_channels, 32, 32))
        self.net.train(was)
        handle.remove()
        return probe["c"]

    def _keep(self, module: nn.Module, args: object, out: torch.Tensor) -> None:
        self._aux_in = out

    def set_drop_path(self, prob: float) -> None:
        for path in self.drop_paths:
            path.drop_prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x)
        aux_in, self._aux_in = self._aux_in, None
        if self.training and self.aux_head is not None:
            return logits, self.aux_head(aux_in)
        return logits
