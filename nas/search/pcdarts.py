"""PC-DARTS ("PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture
Search", arXiv 1907.05737).

Partial channel connections are a supernet option (``space.supernet.partial_channels``, K = 4
in ``conf/search/pcdarts.yaml``); this strategy adds edge normalisation: one parameter
``beta`` per edge, softmax-normalised over the edges that feed the same node, multiplying the
edge's ``softmax(alpha)`` op weights. The supernet runs with ``softmax(beta) * softmax(alpha)``
and the architecture is derived from the same product, which ranks each node's input edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas.search.strategies import DartsStrategy, register_strategy, wide
from nas.spaces import SearchSpace


def node_groups(space: SearchSpace) -> dict[str, list[list[int]]]:
    """``{kind: [[edge, ...] per node]}``: the edges that feed each node of a cell."""
    out = {}
    for kind, nodes in space.edge_nodes.items():
        groups: dict[int, list[int]] = {}
        for e, node in enumerate(nodes):
            groups.setdefault(node, []).append(e)
        out[kind] = list(groups.values())
    return out


def grouped_softmax(beta: torch.Tensor, groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """``softmax`` of ``beta`` (``[edges]``) within each group of edges."""
    out = beta.new_zeros(beta.shape)
    for ids in groups:
        out[list(ids)] = F.softmax(beta[list(ids)], dim=0)
    return out


class PcDartsStrategy(DartsStrategy):
    def __init__(
        self, space: SearchSpace, alpha_init_std: float = 1e-3, beta_weight: float = 0.0
    ) -> None:
        super().__init__(space, alpha_init_std, beta_weight)
        self.edge_betas = nn.ParameterDict(
            {k: nn.Parameter(alpha_init_std * torch.randn(e)) for k, e in space.cell_edges.items()}
        )
        self.groups = node_groups(space)

    def edge_weights(self) -> dict[str, torch.Tensor]:
        """``{kind: [edges]}``: each node's input edges' softmax(beta)."""
        with self._fp32():
            return {k: grouped_softmax(wide(b), self.groups[k]) for k, b in self.edge_betas.items()}

    def op_weights(self) -> dict[str, torch.Tensor]:
        edges = self.edge_weights()
        return {k: p * edges[k][:, None] for k, p in self.probabilities().items()}


register_strategy(
    "pcdarts",
    lambda space, cfg, _: PcDartsStrategy(
        space, cfg["alpha_init_std"], cfg.get("beta_weight", 0.0)
    ),
)
