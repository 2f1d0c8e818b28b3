"""PC-DARTS through export: the cost model of partial-channel single paths and of the
retrained network, the channel shuffle in ONNX, and the sizes ``final.json`` reports."""

import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import nas
from nas.cost import CostModel, count_flops, count_params
from nas.export import build_subnet
from nas.export.onnx import export_onnx
from nas.files import ARCHIVE_FILE, FINAL_FILE, SUBNET_FILE
from nas.io import read_json, read_jsonl
from nas.pipeline import Run, run
from nas.retrain import RetrainModule
from nas.spaces import get_space
from nas.supernet import MixedOp
from tests.conftest import compose_cfg

SIZES = [("darts", {"c": 4, "layers": 3}), ("nb201", {"c": 4, "n_cells": 1})]

#: a PC-DARTS search on digits (8x8, one channel) small enough for a unit test
DIGITS_PCDARTS = (
    "+experiment=digits",
    "search=pcdarts",
    "scale=tiny",
    "stages=[search,derive,sample,evolve,export]",
    "search.epochs=1",
    "search.arch_warmup_epochs=0",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "sample.size=6",
    "sample.neighbours=3",
    "evolution.budget=4",
    "evolution.refine.q=2",
    "predictor.train.steps=30",
    "oneshot.calib_batches=1",
    "oneshot.val_batches=1",
    "oneshot.batch_size=32",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "export.plots=false",
    "callbacks=none",
)


def _archs(space, n=4):
    return [space.sample(random.Random(seed)) for seed in range(n)]


@pytest.mark.parametrize(("name", "sizes"), SIZES)
def test_cost_model_counts_the_partial_channel_subnet(name, sizes):
    """The exported single path of a PC-DARTS supernet runs each op on 1/K of the channels."""
    space = get_space(name)
    options = {**sizes, "partial_channels": 2}
    cost = CostModel(space, 10, 3, 8, options)
    for arch in _archs(space):
        net = build_subnet(space, arch, 10, 3, options).eval()
        assert cost.params(arch) == count_params(net)
        assert cost.flops(arch) == count_flops(net, torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize(("name", "sizes"), SIZES)
def test_cost_model_counts_the_standalone_network(name, sizes):
    """Without supernet options: the network ``space.build_subnet`` builds (and retrain trains)."""
    space = get_space(name, **sizes)
    cost = CostModel(space, 10, 3, 8)
    for arch in _archs(space):
        net = space.build_subnet(arch, 10, 3).eval()
        assert cost.params(arch) == count_params(net)
        assert cost.flops(arch) == count_flops(net, torch.zeros(1, 3, 8, 8))


def test_every_partial_channel_single_op_exports_to_onnx(tmp_path):
    """The shuffle, the bypass and the BatchNorms without affine weights of a reduction edge."""
    space = get_space("darts")
    mixed = MixedOp(space.op_names, 8, 2, partial=4).eval()
    x = torch.randn(2, 8, 8, 8)
    for k in range(1, len(space.op_names)):  # all but 'none'
        record = export_onnx(mixed.single_op(k), x, tmp_path / f"{k}.onnx")
        assert record["max_abs_diff"] < 1e-5, space.op_names[k]


def test_pcdarts_exports_on_digits_sized_as_retrained_and_constrained(tmp_path):
    """A PC-DARTS search exports (ONNX included); ``params``/``flops`` and the constraints are
    the retrained network's, ``exported_*`` those of the 1/K-channel ``subnet.pt``."""
    cfg = compose_cfg(*DIGITS_PCDARTS, f"paths.output_dir={tmp_path}")
    space = Run(cfg).space
    limit = sorted(count_params(space.build_subnet(a, 10, 1)) for a in _archs(space, 40))[20]
    cfg = compose_cfg(
        *DIGITS_PCDARTS, f"paths.output_dir={tmp_path}", f"constraints.max_params={limit}"
    )
    run(cfg)
    final = read_json(tmp_path / FINAL_FILE)
    arch = space.from_json(final)
    recipe = OmegaConf.to_container(cfg.retrain, resolve=True)
    module = RetrainModule.from_config(cfg.space, space.to_str(arch), 10, 1, recipe)
    x = torch.zeros(1, 1, 8, 8)
    assert final["params"] == count_params(module.net.net) <= limit
    assert final["flops"] == count_flops(module.net.net.eval(), x)

    net, _ = nas.load_subnet(tmp_path / SUBNET_FILE)
    assert final["exported_params"] == count_params(net) < final["params"]
    assert final["exported_flops"] == count_flops(net, x)
    import onnxruntime

    images = torch.randn(3, 1, 8, 8)
    session = onnxruntime.InferenceSession(str(tmp_path / "subnet.onnx"))
    (got,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        assert np.abs(got - net(images).numpy()).max() < 1e-4

    archived = [space.from_str(r["arch"]) for r in read_jsonl(tmp_path / ARCHIVE_FILE)]
    assert len(archived) == 10
    assert all(count_params(space.build_subnet(a, 10, 1)) <= limit for a in archived)
