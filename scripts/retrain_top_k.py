"""Print the command that retrains a finished run's k best archs, one Hydra multirun job each.

    python scripts/retrain_top_k.py outputs/runs/cifar10/<date_time> --k 5
    # -> python train.py -m +experiment=cifar10_retrain arch=<run>/topk/1.json,...,<run>/topk/5.json

The arch files go to ``<run>/topk/<rank>.json``. Append a launcher to spread the jobs
(``launcher=local``, ``launcher=slurm``, ``launcher=ray``; README, "Sweeps").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.sweep import write_top_k


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a finished run directory (holds archive.jsonl)")
    p.add_argument("--k", type=int, default=5, help="how many of the best archs")
    p.add_argument(
        "--experiment", default=None, help="the retraining experiment (default: <name>_retrain)"
    )
    args = p.parse_args(argv)
    if args.k < 1:
        p.error(f"--k must be >= 1, got {args.k}")
    config = args.run_dir / ".hydra" / "config.yaml"
    if not config.exists():
        p.error(f"{config} is missing: {args.run_dir} is not a run directory")
    experiment = args.experiment or f"{OmegaConf.load(config).name}_retrain"
    try:
        command = write_top_k(args.run_dir, args.k, experiment)
    except ValueError as err:
        p.error(str(err))
    print(command)
    return command


if __name__ == "__main__":
    main()
