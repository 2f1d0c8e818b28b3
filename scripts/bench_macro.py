"""How well the macro (``mbv3``) supernet ranks its subnets one-shot, measured without a table.

No benchmark table covers this space, so the truth is made here: a small sample of subnets
(the largest, the smallest and ``--archs`` - 2 random ones) is trained standalone from a
seeded initialisation for ``--steps`` SGD steps (the shortlist stage's brief training,
``shortlist.*`` settings) and rated on the arch half of the data; the one-shot scores of the
same subnets come from the supernet the pipeline trained (``+experiment=digits space=mbv3``
with ``search=spos search.sampler=sandwich`` for ``--epochs`` epochs; ``--override`` passes
more, e.g. ``search.distill=true``). Reports Kendall tau and Spearman of the one-shot scores
and, as the anchor every ranking must beat, of the parameter count, against the briefly
trained accuracies. The supernet stays in ``--run-dir``: a rerun with other ``--archs`` or
``--steps`` trains no supernet again.

    python scripts/bench_macro.py --out outputs/bench/macro.json

``--out`` writes JSON: ``settings``, ``archs``, ``oneshot``, ``trained``, ``params``,
``kendall``, ``spearman``, ``kendall_params``, ``spearman_params``, ``train_seconds``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from bench_ranking import compose
from scipy.stats import kendalltau, spearmanr

from nas.evaluate.base import seeded_subnet
from nas.evaluate.brief import brief_training
from nas.io import write_json_atomic
from nas.pipeline import Run, run
from nas.search.single_path import extreme_paths, op_parameter_counts

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=12, help="subnets ranked (>= 3)")
    p.add_argument("--epochs", type=int, default=10, help="supernet training epochs")
    p.add_argument("--steps", type=int, default=200, help="SGD steps of each brief training")
    p.add_argument("--seed", type=int, default=0, help="which random subnets")
    p.add_argument("--run-dir", type=Path, default=ROOT / "outputs" / "bench" / "macro_run")
    p.add_argument("--override", action="append", default=[], help="a Hydra override")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.archs < 3 or args.epochs < 1 or args.steps < 1:
        p.error("--archs must be >= 3, --epochs and --steps >= 1")
    cfg = compose(
        [
            "+experiment=digits",
            "space=mbv3",
            "search=spos",
            "search.sampler=sandwich",
            f"search.epochs={args.epochs}",
            "stages=[search]",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            f"paths.output_dir={args.run_dir}",
            *args.override,
        ]
    )
    start = time.perf_counter()
    run(cfg)  # skips itself when the run dir holds this supernet
    train_seconds = time.perf_counter() - start
    state = Run(cfg)
    space, dm, device = state.space, state.datamodule, state.device
    supernet = state.supernet_module.supernet
    rng = random.Random(args.seed)
    archs = [*extreme_paths(space, op_parameter_counts(supernet))]
    while len(archs) < args.archs:
        arch = space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    oneshot = [s.value for s in state.oneshot_evaluator.evaluate(archs)]
    s = cfg.shortlist
    batches = dm.fixed_batches("weights", args.steps, s.batch_size, seed=cfg.seed)
    train = [(x.to(device), y.to(device)) for x, y in batches]
    val = [(x.to(device), y.to(device)) for x, y in dm.fixed_batches("arch", 1, s.val_images)]
    trained, params = [], []
    for arch in archs:
        net = seeded_subnet(space, arch, dm.num_classes, dm.in_channels, cfg.seed).to(device)
        trained.append(brief_training(net, train, val, args.steps, s.lr, s.weight_decay).accuracy)
        params.append(int(state.cost_of("params", arch)))
    result = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "run_dir")},
        "archs": [space.to_str(a) for a in archs],
        "oneshot": oneshot,
        "trained": trained,
        "params": params,
        "kendall": float(kendalltau(oneshot, trained).statistic),
        "spearman": float(spearmanr(oneshot, trained).statistic),
        "kendall_params": float(kendalltau(params, trained).statistic),
        "spearman_params": float(spearmanr(params, trained).statistic),
        "train_seconds": train_seconds,
    }
    print(f"{'arch':<52} {'params':>8} {'one-shot':>9} {'trained':>8}")
    for a, n, o, t in zip(result["archs"], params, oneshot, trained, strict=True):
        print(f"{a:<52} {n:>8,} {o:>9.2f} {t:>8.2f}")
    print(
        f"one-shot vs trained: Kendall tau {result['kendall']:.3f}, Spearman "
        f"{result['spearman']:.3f}; params: {result['kendall_params']:.3f}, "
        f"{result['spearman_params']:.3f} ({len(archs)} archs, {args.steps} steps each)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
