"""The macro space ``mbv3``: codecs, edits, encodings, the elastic supernet's slicing, the
sandwich's paths and export (standalone network and ONNX equal to the supernet path)."""

import random

import pytest
import torch
import torch.nn.functional as F

from nas.errors import ConfigError
from nas.export.subnet import build_subnet
from nas.search.single_path import SinglePathStrategy, extreme_paths, op_parameter_counts
from nas.spaces import MBV3_OPS, ArchError, get_space
from nas.spaces.mbv3 import mid_channels
from nas.supernet import build_supernet
from nas.supernet.elastic import ElasticBlock

SIZES = {"widths": [8, 16, 24], "strides": [1, 2, 2], "stem": 8, "head": 32}


@pytest.fixture(scope="module")
def space():
    return get_space("mbv3", **SIZES)


def _jiggled(supernet):
    """``supernet`` with every weight, BatchNorm statistic and transform moved off its
    initial value, so that slices and copies that mix channels up would show."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in supernet.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
        for m in supernet.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return supernet.eval()


def test_codec_round_trips_and_names_what_is_wrong(space):
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(50)]
    assert len(set(archs)) > 45
    for arch in archs:
        assert space.from_str(space.to_str(arch)) == arch
        assert space.from_json(space.to_json(arch)) == arch
    assert space.to_str(archs[0]).count("|") == 2
    for bad, says in (
        ("k3e3-k3e3|k3e3-k3e3", "3 '|'-separated stages"),
        ("k3e3|k3e3-k3e3|k3e3-k3e3", "stage 1 .* 1 blocks"),
        ("k3e3-k9e3|k3e3-k3e3|k3e3-k3e3", "block 'k9e3'"),
        ("k3e3-k3e3-k3e3-k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "5 blocks"),
    ):
        with pytest.raises(ArchError, match=says):
            space.from_str(bad)
    with pytest.raises(ArchError, match="followed by skips"):
        space.one_hot(("k3e3", "skip", "k3e3", "skip", *archs[0][4:]))


def test_neighbours_are_the_single_edits_and_distance_is_a_metric(space):
    arch = space.from_str("k3e3-k5e4|k7e6-k3e3-k3e3-k3e3|k5e6-k5e6-k5e6")
    neighbours = space.neighbours(arch)
    assert len(neighbours) == len(set(neighbours)) and arch not in neighbours
    # 4 kernel/expansion edits per block (9 blocks); stage 1 grows (9 ops), stage 2 shrinks,
    # stage 3 grows or shrinks
    assert len(neighbours) == 9 * 4 + 9 + 1 + (9 + 1)
    assert all(space.distance(arch, n) == 1 for n in neighbours)
    rng = random.Random(3)
    for _ in range(30):
        a, b, c = (space.sample(rng) for _ in range(3))
        assert space.distance(a, a) == 0 and space.distance(a, b) == space.distance(b, a)
        assert space.distance(a, c) <= space.distance(a, b) + space.distance(b, c)
        assert space.distance(a, space.mutate(a, rng)) == 1


def test_encoding_and_derive(space):
    arch = space.sample(random.Random(4))
    one_hot = space.one_hot(arch)
    assert one_hot["block"].shape == (12, len(MBV3_OPS))
    assert space.encode(arch).shape == (space.encoding_size,)
    assert space.derive(one_hot) == arch
    # a stage's first two blocks never skip; a stage ends at its first skip
    weights = torch.zeros(12, len(MBV3_OPS))
    weights[:, 0] = 1.0
    weights[1, 5] = weights[2, 7] = weights[3, 7] = 0.5
    derived = space.derive({"block": weights})
    assert space.stages(derived) == [["k3e3", "k5e4"], ["k3e3", "k3e3"], ["k3e3", "k3e3"]]
    assert not space.op_mask()["block"][[0, 1, 4, 5, 8, 9], 0].any()


def test_smaller_kernels_and_expansions_are_slices_of_the_largest():
    torch.manual_seed(0)
    elastic = ElasticBlock(MBV3_OPS, 8, 8, 1, "relu", se=True).eval()
    _jiggled(elastic)
    x = torch.randn(2, 8, 9, 9)
    op = MBV3_OPS.index("k5e4")
    standalone = elastic.single_op(op).eval()
    mid = mid_channels(8, 4)
    # the 5x5 kernel of the first mid channels is the centre of the 7x7 kernel
    assert torch.equal(standalone.conv_dw.weight, elastic.conv_dw.weight[:mid, :, 1:6, 1:6])
    assert torch.equal(standalone.conv_pw.weight, elastic.conv_pw.weight[:mid])
    assert torch.equal(standalone.bn1.running_var, elastic.bn1.running_var[:mid])
    assert torch.equal(standalone.se.conv_expand.bias, elastic.se_expand.bias[:mid])
    w = torch.zeros(len(MBV3_OPS))
    w[op] = 1.0
    torch.testing.assert_close(elastic(x, w, (w != 0).tolist()), standalone(x))
    # skip is the identity; a block that changes width cannot skip
    w = torch.zeros(len(MBV3_OPS))
    w[0] = 1.0
    assert torch.equal(elastic(x, w, (w != 0).tolist()), x)
    reducing = ElasticBlock(MBV3_OPS, 8, 16, 2, "relu", se=False)
    with pytest.raises(ValueError, match="cannot skip"):
        reducing(x, w, (w != 0).tolist())


def test_kernel_transformation_maps_the_centre():
    torch.manual_seed(0)
    elastic = ElasticBlock(MBV3_OPS, 8, 8, 1, "hard_swish", se=False, kernel_transform=True)
    assert sorted(elastic.transforms) == ["3", "5"]
    mid = mid_channels(8, 6)
    centre5 = elastic.conv_dw.weight[:, :, 1:6, 1:6]
    torch.testing.assert_close(elastic.kernel(5, mid), centre5)  # identity at initialisation
    with torch.no_grad():
        elastic.transforms["5"].mul_(2.0)
    torch.testing.assert_close(elastic.kernel(5, mid), 2 * centre5)
    torch.testing.assert_close(elastic.kernel(3, mid), 2 * centre5[:, :, 1:4, 1:4])


def test_sliced_batchnorm_recalibrates_only_its_channels():
    from nas.evaluate.oneshot import recalibrate_bn

    elastic = ElasticBlock(MBV3_OPS, 8, 8, 1, "relu", se=False)
    w = torch.zeros(len(MBV3_OPS))
    w[MBV3_OPS.index("k3e3")] = 1.0
    x = torch.randn(16, 8, 5, 5)
    recalibrate_bn(elastic, lambda t: elastic(t, w, (w != 0).tolist()), [x])
    mid = mid_channels(8, 3)
    h = elastic.conv_pw(x)[:, :mid]
    torch.testing.assert_close(elastic.bn1.running_mean[:mid], h.mean((0, 2, 3)))
    assert torch.equal(elastic.bn1.running_mean[mid:], torch.zeros(elastic.bn1.num_features - mid))


@pytest.mark.parametrize("transform", [False, True])
def test_exported_subnets_compute_the_supernet_paths(space, transform, tmp_path):
    """20 archs, the largest and the smallest among them: the standalone network with the
    inherited weights gives the supernet path's logits (float32), and so does its ONNX."""
    options = {**SIZES, "kernel_transform": transform}
    supernet = _jiggled(build_supernet(space, 10, 3, **options))
    largest, smallest = extreme_paths(space, op_parameter_counts(supernet))
    assert space.to_str(largest) == "k7e6-k7e6-k7e6-k7e6|" * 2 + "k7e6-k7e6-k7e6-k7e6"
    assert space.to_str(smallest) == "k3e3-k3e3|k3e3-k3e3|k3e3-k3e3"
    rng = random.Random(5)
    archs = [largest, smallest, *(space.sample(rng) for _ in range(18))]
    x = torch.randn(4, 3, 16, 16)
    for arch in archs:
        with torch.no_grad():
            path = supernet(x, space.one_hot(arch))
            net = build_subnet(space, arch, 10, 3, options, supernet.state_dict()).eval()
            assert (net(x) - path).abs().max() <= 1e-5
    if transform:
        return
    pytest.importorskip("onnxruntime")
    from nas.export.onnx import export_onnx

    assert export_onnx(net, x, tmp_path / "subnet.onnx")["max_abs_diff"] <= 1e-4


def test_sandwich_trains_the_largest_path_first_and_distillation_needs_it(space):
    supernet = build_supernet(space, 10, 3, **SIZES)
    strategy = SinglePathStrategy(space, "sandwich", supernet=supernet, distill=True)
    largest, _smallest, *rest = strategy.train_paths()
    assert strategy.distills and len(rest) == 2
    assert space.derive(largest) == extreme_paths(space, op_parameter_counts(supernet))[0]
    with pytest.raises(ConfigError, match=r"search\.sampler=sandwich"):
        SinglePathStrategy(space, "uniform", distill=True)


def test_distilled_paths_learn_the_largest_paths_predictions(tiny_cfg):
    """With ``search.distill``, the second path's loss is the cross-entropy to the first
    path's predicted distribution (not the labels)."""
    from tests.conftest import search_module

    cfg = tiny_cfg("space=mbv3", "search=spos", "search.sampler=sandwich", "search.distill=true")
    dm, module = search_module(cfg)
    x = torch.randn(8, dm.in_channels, 8, 8)
    y = torch.randint(0, dm.num_classes, (8,))
    losses = []
    module.manual_backward = lambda loss: losses.append(loss.detach())
    paths = list(module.strategy.train_paths())
    module.strategy.train_paths = lambda: paths
    module._weights_backward(x, y)
    with torch.no_grad():
        first = module.supernet(x, paths[0])
        second = module.supernet(x, paths[1])
    torch.testing.assert_close(losses[0], F.cross_entropy(first, y))
    torch.testing.assert_close(losses[1], F.cross_entropy(second, first.softmax(1)))


def test_a_run_prices_mbv3_archs_by_params_and_latency(tiny_cfg, tmp_path):
    """The cost tables of a run cover the macro space (its sizes are lists in the config);
    a deeper, wider subnet costs more."""
    from nas.pipeline import Run

    cfg = tiny_cfg(
        "space=mbv3",
        "latency.repeats=2",
        "latency.warmup=1",
        "latency.calibration=2",
        f"latency.cache_dir={tmp_path / 'latency'}",
    )
    state = Run(cfg)
    space = state.space
    small = space.from_str("k3e3-k3e3|k3e3-k3e3")
    large = space.from_str("k7e6-k7e6-k7e6-k7e6|k7e6-k7e6-k7e6-k7e6")
    assert state.cost_of("params", large) > state.cost_of("params", small)
    net = space.build_subnet(large, state.datamodule.num_classes, state.datamodule.in_channels)
    assert state.cost_of("params", large) == sum(p.numel() for p in net.parameters())
    assert state.cost_of("latency", large) > 0
    assert list((tmp_path / "latency").glob("latency-*.json"))


def test_sizes_that_do_not_fit_name_the_config_key():
    from nas.search import build_space
    from nas.search.parts import build_search_supernet

    bad = {"widths": [8, 16], "strides": [1], "stem": 8, "head": 16}
    with pytest.raises(ConfigError, match=r"space\.subnet.*strides=\[1\]"):
        build_space({"name": "mbv3", "subnet": bad})
    space = build_space({"name": "mbv3", "subnet": {**bad, "strides": [1, 2]}})
    with pytest.raises(ConfigError, match=r"space\.supernet.*widths"):
        build_search_supernet(space, {**bad, "widths": [8, -1], "strides": [1, 2]}, 10, 3)
    with pytest.raises(ConfigError, match=r"space\.supernet\.widths has 3 stages"):
        build_search_supernet(space, {**bad, "widths": [8, 8, 8], "strides": [1, 1, 1]}, 10, 3)
