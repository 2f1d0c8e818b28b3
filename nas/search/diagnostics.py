"""Wiring-bias diagnostics of a differentiable search ("Understanding the wiring evolution in
differentiable neural architecture search", arXiv 2009.01272).

Weight-sharing searches drift towards parameter-free ops (skip connections collapse) and
towards wide, shallow cells fed by the cell inputs. :func:`wiring_stats` measures both from
the strategy's op probabilities and the architecture it derives; :class:`WiringDiagnostics`
logs them every epoch, appends them to ``wiring.jsonl`` and saves op-weight heatmaps.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from nas.files import ALPHAS_FILE, WIRING_DIR, WIRING_FILE
from nas.io import append_jsonl, read_jsonl
from nas.spaces import Arch, SearchSpace

#: a derived normal cell with this many skip connections or more has likely collapsed
SKIP_WARNING = 3


def cell_shape(
    nodes: list[str], edges: list[tuple[str, str, str]], n_inputs: int
) -> dict[str, float]:
    """Of one derived cell graph (``space.cell_graphs``): ``input_share``, the share of its op
    edges fed by a cell input; ``depth``, the most op edges on a path from an input to the
    output (the last node); ``width``, how many intermediate nodes an input feeds directly."""
    ops = [(s, d) for s, d, op in edges if op]
    inputs = set(nodes[:n_inputs])
    depth = {n: 0 for n in nodes}
    for node in nodes:  # topological order
        for s, d, op in edges:
            if d == node:
                depth[node] = max(depth[node], depth[s] + (1 if op else 0))
    fed = {d for s, d in ops if s in inputs and d != nodes[-1]}
    return {
        "input_share": sum(s in inputs for s, _ in ops) / max(len(ops), 1),
        "depth": float(depth[nodes[-1]]),
        "width": float(len(fed)),
    }


def wiring_stats(
    space: SearchSpace, probs: Mapping[str, torch.Tensor], arch: Arch
) -> dict[str, dict[str, Any]]:
    """``{kind: stats}`` of op probabilities ``{kind: [edges, ops]}`` (rows sum to 1) and the
    derived ``arch``: per-edge ``entropy`` (list) and its ``mean_entropy``, the mean mass on
    ``none`` and on ``skip_connect``, the mean top-1/top-2 ``margin``, the derived cell's
    ``skips`` and its :func:`cell_shape`."""
    graphs = space.cell_graphs(arch)
    out = {}
    for kind, p in probs.items():
        p = p.detach().float().cpu()
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
        top2 = p.topk(2, dim=-1).values
        nodes, edges = graphs[kind]
        stats: dict[str, Any] = {
            "entropy": entropy.tolist(),
            "mean_entropy": float(entropy.mean()),
            "margin": float((top2[:, 0] - top2[:, 1]).mean()),
            "skips": sum(op == "skip_connect" for _, _, op in edges),
            **cell_shape(nodes, edges, space.cell_inputs),
        }
        for op in ("none", "skip_connect"):
            if op in space.op_names:
                stats[f"{op}_mass"] = float(p[:, space.op_index(op)].mean())
        out[kind] = stats
    return out


def collapse_kind(space: SearchSpace) -> str:
    """The cell kind whose skip connections signal collapse: ``normal``, or the only kind."""
    return "normal" if "normal" in space.cell_edges else next(iter(space.cell_edges))


@cache
def _plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        warnings.warn("matplotlib is not installed: no op-weight heatmaps", stacklevel=2)
        return False
    return True


def _validates_or_ends(trainer: pl.Trainer, epoch: int) -> bool:
    """Whether ``epoch`` validates (by ``trainer.check_val_every_n_epoch``) or is the last."""
    every = trainer.check_val_every_n_epoch or 1
    return (epoch + 1) % every == 0 or epoch + 1 >= (trainer.max_epochs or 0)


class WiringDiagnostics(pl.Callback):
    """After every training epoch of a search whose strategy has architecture parameters
    (other modules and single-path strategies: nothing), on rank zero: log
    :func:`wiring_stats` as ``wiring/<kind>_*``, append them to ``wiring.jsonl`` (epochs
    already there, from before a resume, are not repeated), save
    ``wiring/epoch_<n>/op_weights_<kind>.png`` and the derived cell ``wiring/epoch_<n>/cell.png``
    (and log both to W&B when a W&B logger is on) in the epochs that validate
    (``trainer.check_val_every_n_epoch``) and the last one (``pictures=False``: never; about
    3 CPU seconds an epoch), and warn when the derived normal cell has ``SKIP_WARNING`` or
    more skip connections."""

    def __init__(self, run_dir: str | Path, pictures: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.pictures = pictures

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        strategy = getattr(pl_module, "strategy", None)
        if strategy is None or not strategy.arch_parameters():
            return
        space = strategy.space
        probs = strategy.probabilities()
        arch = strategy.derived()
        stats = wiring_stats(space, probs, arch)
        for kind, s in stats.items():
            for key, value in s.items():
                if not isinstance(value, list):
                    pl_module.log(f"wiring/{kind}_{key}", float(value), sync_dist=True)
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        kind = collapse_kind(space)
        skips = stats[kind]["skips"]
        if skips >= SKIP_WARNING:
            cell = "cell" if kind == "cell" else f"{kind} cell"
            warnings.warn(
                f"epoch {epoch}: the derived {cell} has {skips} skip "
                "connections (a sign of collapse; try search=betadarts, search=fairdarts, "
                "search.arch_warmup_epochs or a single-path strategy)",
                stacklevel=2,
            )
        path = self.run_dir / WIRING_FILE
        if all(r["epoch"] != epoch for r in read_jsonl(path)):
            append_jsonl(path, {"epoch": epoch, "arch": space.to_str(arch), "cells": stats})
        if self.pictures and _validates_or_ends(trainer, epoch):
            self._pictures(trainer, space, epoch, probs, arch)

    def _pictures(
        self,
        trainer: pl.Trainer,
        space: SearchSpace,
        epoch: int,
        probs: Mapping[str, torch.Tensor],
        arch: Arch,
    ) -> None:
        if not _plots_available():
            return
        from pytorch_lightning.loggers import WandbLogger

        from nas.export.plots import cell_diagram, op_weight_heatmaps

        records = [r for r in read_jsonl(self.run_dir / ALPHAS_FILE) if r["epoch"] < epoch]
        now = {k: p.detach().float().cpu().tolist() for k, p in probs.items()}
        records.append({"epoch": epoch, "probabilities": now})
        out = self.run_dir / WIRING_DIR / f"epoch_{epoch:03d}"
        out.mkdir(parents=True, exist_ok=True)
        files = op_weight_heatmaps(space, records, out)
        cell = cell_diagram(space, arch, out)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                step = trainer.global_step
                logger.log_image("wiring/op_weights", [str(f) for f in files], step=step)
                logger.log_image("wiring/derived_cell", [str(cell)], step=step)
