"""The pictures of a run's ``plots/``: op weights over the search, the final cell, the search
curve, and score against parameters with its Pareto front. Needs matplotlib (``plots`` extra).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nas.spaces import Arch, SearchSpace


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def op_weight_heatmaps(space: SearchSpace, epochs: Sequence[Mapping], out: Path) -> list[Path]:
    """Per cell kind: the last epoch's op weights ``[edges, ops]`` beside each op's mean weight
    over the edges at every epoch. ``epochs``: ``alphas.jsonl`` records."""
    plt = _plt()
    files = []
    for kind in space.cell_edges:
        probs = np.array([r["probabilities"][kind] for r in epochs])  # [epochs, edges, ops]
        fig, (a, b) = plt.subplots(1, 2, figsize=(12, 0.35 * probs.shape[1] + 2.5))
        im = a.imshow(probs[-1], cmap="viridis", aspect="auto")
        a.set(
            title=f"{kind}: op weights after epoch {epochs[-1]['epoch']}",
            xlabel="op",
            ylabel="edge",
        )
        a.set_xticks(range(len(space.op_names)), space.op_names, rotation=45, ha="right")
        fig.colorbar(im, ax=a)
        im = b.imshow(probs.mean(1).T, cmap="viridis", aspect="auto")
        b.set(title=f"{kind}: mean op weight over edges", xlabel="epoch")
        b.set_yticks(range(len(space.op_names)), space.op_names)
        b.set_xticks(range(len(epochs)), [r["epoch"] for r in epochs])
        fig.colorbar(im, ax=b)
        files.append(_save(fig, out / f"op_weights_{kind}.png"))
    return files


def cell_dot(space: SearchSpace, arch: Arch) -> str:
    """The cells of ``arch`` in graphviz's DOT language, one cluster per cell kind."""
    lines = [
        "digraph cells {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor=lightyellow];',
    ]
    for kind, (nodes, edges) in space.cell_graphs(arch).items():
        lines += [f"  subgraph cluster_{kind} {{", f'    label="{kind} cell";']
        lines += [f'    "{kind}:{n}" [label="{n}"];' for n in nodes]
        for src, dst, op in edges:
            style = f'label="{op}", fontcolor=blue' if op else "color=gray"
            lines.append(f'    "{kind}:{src}" -> "{kind}:{dst}" [{style}];')
        lines.append("  }")
    return "\n".join([*lines, "}"]) + "\n"


def cell_diagram(space: SearchSpace, arch: Arch, out: Path) -> Path:
    """The cells of ``arch`` as graphs, each edge labelled by its op: rendered by graphviz's
    ``dot`` when it is installed (``cell.dot`` beside it), else drawn with matplotlib."""
    dot = shutil.which("dot")
    if dot is not None:
        source = out / "cell.dot"
        source.write_text(cell_dot(space, arch))
        path = out / "cell.png"
        subprocess.run([dot, "-Tpng", str(source), "-o", str(path)], check=True, timeout=60)
        return path
    plt = _plt()
    cells = space.cell_graphs(arch)
    fig, axes = plt.subplots(1, len(cells), figsize=(7 * len(cells), 4.5), squeeze=False)
    for ax, (kind, (nodes, edges)) in zip(axes[0], cells.items(), strict=True):
        xy = {n: (i, 0.45 if i % 2 else -0.45) for i, n in enumerate(nodes)}
        rad = 0.25
        for src, dst, op in edges:
            (x0, y0), (x1, y1) = xy[src], xy[dst]
            arrow = {
                "arrowstyle": "->",
                "color": "0.6" if not op else "0.3",
                "connectionstyle": f"arc3,rad={rad}",
                "shrinkA": 14,
                "shrinkB": 14,
            }
            ax.annotate("", (x1, y1), (x0, y0), arrowprops=arrow)
            if op:  # the label sits on the arc's midpoint
                mx, my = (x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2
                ax.text(
                    mx,
                    my,
                    op,
                    fontsize=8,
                    ha="center",
                    va="center",
                    color="tab:blue",
                    bbox={"boxstyle": "round", "fc": "white", "ec": "none", "alpha": 0.85},
                )
        for n, (x, y) in xy.items():
            ax.text(
                x,
                y,
                n,
                ha="center",
                va="center",
                fontsize=9,
                bbox={"boxstyle": "circle", "fc": "lightyellow", "ec": "k"},
            )
        ax.set_title(f"{kind} cell")
        ax.set_xlim(-0.7, len(nodes) - 0.3)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")  # arc3 bends in display space: keep it equal to data space
        ax.axis("off")
    return _save(fig, out / "cell.png")


def search_curve(scores: Sequence[float], stages: Sequence[str], out: Path) -> Path:
    """Best score so far against one-shot queries, with each query's score coloured by stage."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    q = np.arange(1, len(scores) + 1)
    for stage in dict.fromkeys(stages):
        idx = [i for i, s in enumerate(stages) if s == stage]
        ax.scatter(q[idx], np.asarray(scores)[idx], s=12, alpha=0.6, label=stage)
    ax.step(
        q,
        np.maximum.accumulate(np.nan_to_num(scores, nan=-np.inf)),
        where="post",
        c="k",
        label="best so far",
    )
    ax.set(xlabel="one-shot queries", ylabel="one-shot score", title="search curve")
    ax.legend()
    return _save(fig, out / "search_curve.png")


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both a lower cost and a higher score,
    by increasing cost."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i]))
    front, best = [], -np.inf
    for i in order:
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return front


def score_vs_cost(
    costs: Sequence[float],
    scores: Sequence[float],
    final: int,
    out: Path,
    label: str,
    name: str,
) -> Path:
    """Every archived arch's score against a cost (``label``: parameters, latency, ...), the
    Pareto front, the final arch; ``<name>.png``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(costs, scores, s=12, alpha=0.5, label="archive")
    front = pareto_front(costs, scores)
    ax.step(
        [costs[i] for i in front],
        [scores[i] for i in front],
        where="post",
        c="tab:red",
        label="Pareto front",
    )
    ax.scatter([costs[final]], [scores[final]], marker="*", s=200, c="gold", ec="k", label="final")
    ax.set(xlabel=label, ylabel="score", title=f"score vs {label}")
    ax.legend()
    return _save(fig, out / f"{name}.png")
