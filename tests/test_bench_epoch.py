"""The whole-epoch benchmark's projection: validation, and the checkpoints and pictures that
come with it, counted only in the epochs where the search runs them."""

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_epoch


@pytest.mark.parametrize(("every", "epochs"), [(1, 2), (4, 4)])
def test_projection_counts_validation_in_the_validated_epochs_only(every, epochs):
    overrides = [
        "dataset=synthetic",
        "scale=tiny",
        "search.epochs=10",
        f"trainer.check_val_every_n_epoch={every}",
        "trainer.enable_progress_bar=false",
        "callbacks.wiring_diagnostics.pictures=false",
    ]
    r = bench_epoch.run(overrides, epochs=epochs)
    validated = [i for i, v in enumerate(r["val_s"]) if v > 0]
    # every epoch validates, or (timed every second epoch) the steady epochs 1 and 3
    assert validated == ([0, 1] if every == 1 else [1, 3])
    assert r["validated_epochs"] == 10 // every
    epoch, steps, val = r["epoch_s"], r["steps_s"], r["val_s"]
    own = [e - t - v for e, t, v in zip(epoch, steps, val, strict=True)]
    at, plain = validated[-1], (validated[-1] if every == 1 else 2)
    full_steps = steps[-1] * r["full_steps_per_epoch"] / r["steps_per_epoch"]
    full_val = val[at] * r["full_val_batches"] / r["val_batches"]
    expected = (
        r["setup_s"]
        + max(epoch[0] - epoch[plain], 0.0)
        + (10 // every) * (full_steps + full_val + own[at])
        + (10 - 10 // every) * (full_steps + own[plain])
    )
    assert r["projected_search_min"] * 60 == pytest.approx(expected, abs=1e-6)


def test_a_search_validating_every_few_epochs_needs_four_timed_epochs():
    with pytest.raises(ValueError, match="--epochs must be >= 4"):
        bench_epoch.run(["dataset=synthetic", "trainer.check_val_every_n_epoch=5"], epochs=2)
