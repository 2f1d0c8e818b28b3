"""Checkpoints: atomic writes, the global random state, and errors that name the file and
the mismatch (corrupt, truncated, another config)."""

import random

import numpy as np
import pytest
import torch

from nas.errors import ConfigError, NasError
from nas.pipeline import SUPERNET_FILE, run
from nas.search import SupernetModule
from nas.search.checkpoints import (
    AtomicCheckpointIO,
    RandomState,
    config_changes,
    module_from_checkpoint,
    read_checkpoint,
)


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("killed mid-save")

    with pytest.raises(RuntimeError, match="killed mid-save"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "x": Unpicklable()}, path)
    assert torch.equal(read_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_random_state_round_trips_every_generator_through_a_weights_only_load(tmp_path):
    keeper = RandomState()
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    torch.save(keeper.state_dict(), tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    keeper.load_state_dict(torch.load(tmp_path / "rng.pt", weights_only=True))
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_config_changes_name_every_differing_key_but_epochs():
    saved = {
        "space": {"name": "darts", "supernet": {"c": 8}},
        "search": {"epochs": 1, "betas": (0.5, 0.9)},
    }
    same = {
        "space": {"name": "darts", "supernet": {"c": 8}},
        "search": {"epochs": 5, "betas": [0.5, 0.9]},
    }
    assert config_changes(saved, same) == []
    other = {
        "space": {"name": "nb201", "supernet": {}},
        "search": {"epochs": 1, "betas": [0.5, 0.9]},
    }
    assert config_changes(saved, other) == [
        "space.name: 'darts' there, 'nb201' now",
        "space.supernet.c: 8 there, None now",
    ]


@pytest.fixture
def searched(run_copy, tmp_path):
    """A finished one-epoch tiny search whose last.ckpt a rerun would resume from."""
    run_copy()
    (tmp_path / SUPERNET_FILE).unlink()  # so that a rerun trains again, from last.ckpt
    return tmp_path / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_checkpoint_is_named_not_unpickled(tiny_cfg, searched, damage):
    data = searched.read_bytes()
    searched.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x80junk" * 99)
    with pytest.raises(NasError, match=f"{searched} is not a readable checkpoint.*move it away"):
        run(tiny_cfg("search.epochs=2"))


def test_a_checkpoint_of_another_config_names_the_keys_that_differ(tiny_cfg, searched):
    """Without a stage record (a directory of an older version) nothing says the checkpoint
    is stale but the checkpoint itself: resuming it with another config names the keys."""
    (searched.parents[1] / "stages.json").unlink()
    with pytest.raises(NasError, match=r"another config \(search\.w_lr: 0\.025 there, 0\.05 now\)"):
        run(tiny_cfg("search.epochs=2", "search.w_lr=0.05"))
    with pytest.raises(NasError, match=r"search\.strategy: 'darts' there, 'gdas' now"):
        run(tiny_cfg("search.epochs=2", "search=gdas"))
    run(tiny_cfg("search.epochs=2"))  # a longer schedule of the same config resumes


def test_a_later_stage_names_a_foreign_supernet_file(tiny_cfg, tmp_path):
    torch.save(
        {"state_dict": {"nonsense": torch.zeros(1)}, "hyper_parameters": {}}, tmp_path / "x.ckpt"
    )
    with pytest.raises(NasError, match=r"x\.ckpt does not hold a SupernetModule"):
        module_from_checkpoint(SupernetModule, tmp_path / "x.ckpt")


def test_negative_checkpoint_interval_is_refused(tiny_cfg):
    with pytest.raises(ConfigError, match="checkpoint_every_n_steps=-1 is invalid"):
        run(tiny_cfg("checkpoint_every_n_steps=-1"))
