"""The whole-epoch benchmark's projection: validation counted only where the search runs it."""

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_epoch


def test_projection_counts_validation_in_the_validated_epochs_only():
    overrides = [
        "dataset=synthetic",
        "scale=tiny",
        "search.epochs=10",
        "trainer.check_val_every_n_epoch=4",
        "trainer.enable_progress_bar=false",
        "callbacks.wiring_diagnostics.pictures=false",
    ]
    r = bench_epoch.run(overrides, epochs=2)
    assert len(r["val_s"]) == 2  # both timed epochs validate, whatever the cadence
    assert r["validated_epochs"] == 2  # epochs 4 and 8 of 10
    steps, val, epoch = r["steps_s"][-1], r["val_s"][-1], r["epoch_s"][-1]
    own = epoch - steps - val
    full_val = val * r["full_val_batches"] / r["val_batches"]
    steady = steps * r["full_steps_per_epoch"] / r["steps_per_epoch"] + own
    once = max(r["epoch_s"][0] - epoch, 0.0)
    expected = r["setup_s"] + once + 10 * steady + 2 * full_val
    assert abs(r["projected_search_min"] * 60 - expected) < 1e-6
