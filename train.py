"""Entry point: ``python train.py +experiment=cifar10`` (Hydra overrides as usual)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from nas.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from rich.console import Console

    from nas.errors import NasError
    from nas.pipeline import run

    console = Console()
    try:
        result = run(cfg)
    except NasError as err:  # the message names the key or file to fix; no traceback
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False)
        sys.exit(1)
    if result is None:  # a DDP rank other than zero: rank zero reports
        return
    console.print(f"[bold green]search done[/] ({result.space}, epoch {result.epoch})")
    console.print(f"derived architecture: {result.arch}")
    console.print(f"results in: {result.run_dir.resolve()}")


if __name__ == "__main__":
    main()
