"""The export stage: the final arch's files (``final.json``, ``subnet.pt``, ``subnet.onnx``)
and the run's report (``summary.md`` with ``plots/``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.cost.sizes import CostModel, count_flops, count_params
from nas.evaluate import recalibrate_bn
from nas.evolution import Entry
from nas.export.subnet import build_subnet, save_subnet
from nas.files import (
    ALPHAS_FILE,
    DERIVED_FILE,
    FINAL_FILE,
    ONNX_FILE,
    PLOTS_DIR,
    SUBNET_FILE,
    SUMMARY_FILE,
)
from nas.io import read_json, read_jsonl, write_json_atomic
from nas.spaces import Arch, SearchSpace

log = logging.getLogger(__name__)

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]  # a list of batches or a loader


@torch.no_grad()
def accuracy(net: nn.Module, batches: Batches) -> float:
    """Top-1 accuracy (%) of ``net`` (eval mode) on ``(inputs, labels)`` batches."""
    device = next(net.parameters()).device
    net.eval()
    correct = total = 0
    for x, y in batches:
        correct += int((net(x.to(device)).argmax(1) == y.to(device)).sum())
        total += len(y)
    return 100.0 * correct / total


def export_final(
    run_dir: Path,
    space: SearchSpace,
    space_cfg: Mapping[str, Any],
    supernet: nn.Module | None,
    entries: Sequence[Entry],
    best: Entry,
    algorithm: str,
    calib: Sequence[torch.Tensor],
    test: Batches,
    num_classes: int,
    in_channels: int,
    cost: CostModel,
    onnx: bool = True,
    plots: bool = True,
    shortlist: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    pareto: tuple[str, Callable[[Arch], float]] | None = None,
) -> dict[str, Any]:
    """Export ``best`` (the best of ``entries``, the one-shot scores) and return
    ``final.json``'s record.

    The arch's single-path network inherits ``supernet``'s weights, its BatchNorm statistics
    are recalibrated on ``calib`` (the one-shot evaluator's inputs, so it is the network that
    was scored), and it is scored once on the ``test`` split. ``params`` and ``flops`` are
    those of the network ``retrain`` builds, from ``cost`` (a :class:`CostModel` of it, which
    also places the archive on the score-vs-parameters plot); ``exported_params`` and
    ``exported_flops`` those of ``subnet.pt`` (the supernet's size and, after a PC-DARTS
    search, its ops on ``1/K`` of the channels). ``final.json`` is written last: its presence
    marks the stage done.

    Without a ``supernet`` (a training-free search) there are no weights to inherit: the
    record holds the arch, its scores and sizes (``test_accuracy`` and the exported sizes are
    ``None``), and no ``subnet.pt`` or ONNX file is written; ``retrain`` trains the arch.

    ``shortlist``: the shortlist stage's record of ``best`` (its brief training's accuracy and
    loss on the arch half, steps, how many candidates), kept as ``final.json``'s
    ``shortlist`` (``None`` without that stage). ``extra``: further keys of the record (the
    objectives, the front, the latency). ``pareto``: ``(name, value of an arch)`` of a cost
    objective: ``plots/pareto.png`` draws the scores against it.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {
        **space.to_json(best.arch),
        "score": best.score.value,
        "scorer": best.score.source,
        # the one-shot accuracy, alone or as a component of the score (None without one)
        "oneshot_score": (
            best.score.value
            if best.score.source == "oneshot"
            else (best.score.components or {}).get("oneshot")
        ),
        **({"components": dict(best.score.components)} if best.score.components else {}),
        "test_accuracy": None,
        "params": cost.params(best.arch),
        "flops": cost.flops(best.arch),
        "exported_params": None,
        "exported_flops": None,
        "found_by": {"stage": best.stage, "algorithm": algorithm},
        "shortlist": None if shortlist is None else dict(shortlist),
        "queries": len(entries),
        "query_seconds": sum(e.score.cost.seconds for e in entries),
        "files": {},
        **(extra or {}),
    }
    if supernet is not None:
        _export_subnet(
            record,
            run_dir,
            space,
            space_cfg,
            supernet,
            best.arch,
            calib,
            test,
            (num_classes, in_channels),
            onnx,
        )
    if plots:
        record["plots"] = _optional(
            "plots", lambda: _plots(run_dir, space, entries, best, cost.params, pareto)
        )
    record["export_seconds"] = time.perf_counter() - start
    (run_dir / SUMMARY_FILE).write_text(summary(record, run_dir))
    write_json_atomic(run_dir / FINAL_FILE, record)
    return record


def _export_subnet(
    record: dict[str, Any],
    run_dir: Path,
    space: SearchSpace,
    space_cfg: Mapping[str, Any],
    supernet: nn.Module,
    arch: Arch,
    calib: Sequence[torch.Tensor],
    test: Batches,
    shape: tuple[int, int],
    onnx: bool,
) -> None:
    """``subnet.pt`` (and ``subnet.onnx``): ``arch``'s single path with the supernet's weights,
    BatchNorm recalibrated on ``calib``; its test accuracy and sizes go into ``record``.
    ``shape``: ``(num_classes, in_channels)``."""
    num_classes, in_channels = shape
    device = next(supernet.parameters()).device
    net = build_subnet(
        space,
        arch,
        num_classes,
        in_channels,
        space_cfg.get("supernet") or {},
        supernet.state_dict(),
    ).to(device)
    recalibrate_bn(net, net, [x.to(device) for x in calib])
    record.update(
        test_accuracy=accuracy(net, test),
        exported_params=count_params(net),
        exported_flops=count_flops(net, calib[0][:1].to(device)),
        files={"subnet": SUBNET_FILE},
    )
    save_subnet(run_dir / SUBNET_FILE, net, space, space_cfg, arch, num_classes, in_channels)
    if onnx:
        record["onnx"] = _optional(
            "ONNX export", lambda: _onnx(net, calib[0][:2], run_dir / ONNX_FILE)
        )


def _optional(what: str, make):
    """``make()``, or ``None`` with a warning when an optional package is missing."""
    try:
        return make()
    except ImportError as err:
        log.warning("%s skipped: %s (install the project's extras)", what, err)
        return None


def _onnx(net: nn.Module, x: torch.Tensor, path: Path) -> dict[str, Any]:
    from nas.export.onnx import export_onnx

    return export_onnx(net, x, path)


def _plots(
    run_dir: Path,
    space: SearchSpace,
    entries: Sequence[Entry],
    best: Entry,
    params_of: Callable[[Arch], int],
    pareto: tuple[str, Callable[[Arch], float]] | None = None,
) -> list[str]:
    from nas.export import plots

    out = run_dir / PLOTS_DIR
    out.mkdir(exist_ok=True)
    files = []
    epochs = list(read_jsonl(run_dir / ALPHAS_FILE))
    if epochs:
        files += plots.op_weight_heatmaps(space, epochs, out)
    files.append(plots.cell_diagram(space, best.arch, out))
    files.append(
        plots.search_curve([e.score.value for e in entries], [e.stage for e in entries], out)
    )
    scores, final = [e.score.value for e in entries], entries.index(best)
    params = [params_of(e.arch) for e in entries]
    files.append(plots.score_vs_cost(params, scores, final, out, "parameters", "score_vs_params"))
    if pareto is not None:
        name, value = pareto
        costs = [value(e.arch) for e in entries]
        files.append(plots.score_vs_cost(costs, scores, final, out, COST_LABELS[name], "pareto"))
    return [str(Path(f).relative_to(run_dir)) for f in files]


#: the axis label of each cost objective
COST_LABELS = {"latency": "latency (ms)", "params": "parameters", "flops": "FLOPs per image"}


def _shown(value: float | None, spec: str) -> str:
    """``value`` formatted, or ``n/a`` (a training-free run inherits no weights)."""
    return "n/a" if value is None else format(value, spec)


def summary(record: Mapping[str, Any], run_dir: Path) -> str:
    """``summary.md``: the final arch, its figures and the run's pictures."""
    lines = [
        "# Search summary",
        "",
        f"Run directory: `{run_dir}`",
        "",
        "| | |",
        "|---|---|",
        f"| space | {record['space']} |",
        f"| final arch | `{record['arch']}` |",
        f"| score ({record['scorer']}) | {record['score']:.3f} |",
        f"| one-shot score (validation half) | {_shown(record['oneshot_score'], '.2f')} |",
        f"| test accuracy (inherited weights) | {_shown(record['test_accuracy'], '.2f')} |",
        f"| parameters (retrained network) | {record['params']:,} |",
        f"| FLOPs per image (retrained network) | {record['flops']:,} |",
        f"| parameters (`{SUBNET_FILE}`) | {_shown(record['exported_params'], ',')} |",
        f"| FLOPs per image (`{SUBNET_FILE}`) | {_shown(record['exported_flops'], ',')} |",
        f"| found by | {record['found_by']['algorithm']} (stage `{record['found_by']['stage']}`) |",
        f"| queries | {record['queries']} ({record['query_seconds']:.1f} s) |",
    ]
    if record.get("latency_ms") is not None:
        lines.append(f"| latency ({record['latency_device']}) | {record['latency_ms']:.3f} ms |")
    if record.get("front"):
        lines.append(
            f"| front ({', '.join(record['objectives'])}) | {len(record['front'])} archs, "
            f"export.choice={record['choice']} |"
        )
    if record.get("onnx"):
        lines.append(
            f"| ONNX | `{record['onnx']['file']}` (max abs diff {record['onnx']['max_abs_diff']:.1e}) |"
        )
    derived = run_dir / DERIVED_FILE
    if derived.exists():
        arch = read_json(derived)["arch"]
        shown = f"`{arch}`" if arch is not None else "no arch derived (no architecture parameters)"
        lines.append(f"| derived by the strategy | {shown} |")
    lines.append("")
    for f in record.get("plots") or []:
        lines += [f"![{Path(f).stem}]({f})", ""]
    return "\n".join(lines)
