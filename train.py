"""Entry point: ``python train.py +experiment=cifar10`` (Hydra overrides as usual)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from nas.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run the configured stages; return the metric a sweeper maximises: the final arch's
    one-shot score (its retrained accuracy when only retraining ran; None without either)."""
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
        return None
    final, derived, retrained = result.final, result.derived, result.retrain
    if final is not None:
        console.print(f"[bold green]done[/] ({result.space})")
        console.print(f"final architecture: {final['arch']}")
        oneshot = final["oneshot_score"]
        shown = f"one-shot {oneshot:.2f} on validation; " if oneshot is not None else ""
        weights = (
            f"test accuracy {final['test_accuracy']:.2f} with inherited weights "
            f"(subnet.pt: {final['exported_params']:,} parameters)"
            if final["test_accuracy"] is not None
            else "no weights (training-free: add retrain to the stages to train it)"
        )
        console.print(
            f"score {final['score']:.3f} ({final['scorer']}; {shown}{weights}); as retrained: "
            f"{final['params']:,} parameters, {final['flops']:,} FLOPs per image"
        )
        console.print(f"summary: {(result.run_dir / 'summary.md').resolve()}")
    elif derived is not None:
        console.print(f"[bold green]search done[/] ({result.space}, epoch {derived['epoch']})")
        console.print(
            f"derived architecture: {derived['arch'] or 'none (no architecture parameters)'}"
        )
    if retrained is not None:
        console.print(
            f"retrained {retrained['epochs']} epochs: test accuracy "
            f"{retrained['test_accuracy']:.2f}, {retrained['params']:,} parameters"
        )
    console.print(f"results in: {result.run_dir.resolve()}")
    if final is not None:
        return float(final["score"])
    return float(retrained["test_accuracy"]) if retrained is not None else None


if __name__ == "__main__":
    main()
