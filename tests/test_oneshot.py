"""One-shot evaluator: BN recalibration, accuracy of inherited-weight subnets, no side effects."""

import copy

import pytest
import torch

from nas.evaluate.oneshot import OneShotEvaluator, recalibrate_bn
from nas.spaces import NB201Space
from nas.supernet import build_supernet
from tests.conftest import NB201_MIXED

ARCHS = [
    NB201_MIXED,
    ("skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3", "none"),
]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    space = NB201Space(c=8, n_cells=1)
    supernet = build_supernet(space, num_classes=4, in_channels=3, c=8, n_cells=1)
    calib = [torch.randn(8, 3, 8, 8) for _ in range(3)]
    val = [(torch.randn(10, 3, 8, 8), torch.randint(0, 4, (10,))) for _ in range(2)]
    return space, supernet, calib, val


def _bn_buffers(net):
    return {
        k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k
    }


def test_recalibration_averages_every_batch_equally(setup):
    space, supernet, calib, _ = setup
    net = copy.deepcopy(supernet)
    weights = space.one_hot(ARCHS[0])
    net.net.stem[1].running_mean.fill_(5.0)
    recalibrate_bn(net, lambda x: net(x, weights), [calib[0], torch.cat(calib[1:])[:8]])
    with torch.no_grad():
        stem_out = torch.cat([net.net.stem[0](calib[0]), net.net.stem[0](torch.cat(calib[1:])[:8])])
    expected = stem_out.mean(dim=(0, 2, 3))
    assert torch.allclose(net.net.stem[1].running_mean, expected, atol=1e-5)
    assert not net.training and net.net.stem[1].momentum == 0.1


def test_scores_are_accuracies_without_side_effects(setup):
    _, supernet, calib, val = setup
    supernet.train()
    before = _bn_buffers(supernet)
    evaluator = OneShotEvaluator(supernet, calib, val)
    scores = evaluator.evaluate(ARCHS)
    assert [s.source for s in scores] == ["oneshot", "oneshot"]
    assert all(0.0 <= s.value <= 100.0 and s.cost.seconds > 0 for s in scores)
    after = _bn_buffers(supernet)
    assert all(torch.equal(before[k], after[k]) for k in before) and supernet.training
    assert [s.value for s in evaluator.evaluate(ARCHS)] == [s.value for s in scores]


def _recalibrated(setup, arch):
    """A copy of the setup's supernet recalibrated for ``arch``, and ``arch``'s op weights."""
    space, supernet, calib, _ = setup
    weights = space.one_hot(arch)
    reference = copy.deepcopy(supernet)
    recalibrate_bn(reference, lambda x: reference(x, weights), calib)
    return reference, weights


def test_accuracy_uses_the_recalibrated_subnet(setup):
    _, supernet, calib, val = setup
    arch = ARCHS[1]
    reference, weights = _recalibrated(setup, arch)
    x = torch.cat([v[0] for v in val])
    with torch.no_grad():
        predicted = reference(x, weights).argmax(dim=1)
    right = [(x, predicted)]
    wrong = [(x, (predicted + 1) % 4)]
    corrupted = copy.deepcopy(supernet)
    for m in corrupted.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(1e4)  # stale statistics must not matter
    assert OneShotEvaluator(corrupted, calib, right).evaluate([arch])[0].value == 100.0
    assert OneShotEvaluator(corrupted, calib, wrong).evaluate([arch])[0].value == 0.0


def test_loss_metric_is_the_negative_mean_cross_entropy_of_the_recalibrated_subnet(setup):
    _, supernet, calib, val = setup
    arch = ARCHS[1]
    reference, weights = _recalibrated(setup, arch)
    x, y = torch.cat([v[0] for v in val]), torch.cat([v[1] for v in val])
    with torch.no_grad():
        expected = -torch.nn.functional.cross_entropy(reference(x, weights), y).item()
    score = OneShotEvaluator(supernet, calib, val, metric="loss").evaluate([arch])[0]
    assert score.value == pytest.approx(expected, rel=1e-5) and score.value < 0
    with pytest.raises(ValueError, match="unknown one-shot metric 'top5'"):
        OneShotEvaluator(supernet, calib, val, metric="top5")


def test_rejects_unlabelled_validation_batches(setup):
    _, supernet, calib, _ = setup
    with pytest.raises(ValueError, match="labels"):
        OneShotEvaluator(supernet, calib, [torch.randn(2, 3, 8, 8)])


def test_darts_space_scores_the_single_path_of_each_arch():
    """On the DARTS space (two cell kinds) the score is the accuracy of the arch's own path:
    labels predicted by that recalibrated path score 100, another arch's path scores less."""
    import random

    from nas.spaces import DartsSpace

    torch.manual_seed(0)
    space = DartsSpace(c=4, layers=3)
    supernet = build_supernet(space, num_classes=10, in_channels=3, c=4, layers=3)
    calib = [torch.randn(16, 3, 8, 8) for _ in range(2)]
    x = torch.randn(64, 3, 8, 8)
    rng = random.Random(0)
    a, b = space.sample(rng), space.sample(rng)
    reference = copy.deepcopy(supernet)
    weights = space.one_hot(a)
    recalibrate_bn(reference, lambda t: reference(t, weights), calib)
    with torch.no_grad():
        labels = reference(x, weights).argmax(1)
    scores = OneShotEvaluator(supernet, calib, [(x, labels)]).evaluate([a, b])
    assert scores[0].value == 100.0
    assert scores[1].value < 100.0


def test_canonical_scores_every_spelling_of_a_function_alike(setup):
    space, supernet, calib, val = setup
    # nodes 1 and 2 both hold a 3x3 conv of the input: swapping what the output applies to
    # them spells the same function with other edges, hence other supernet weights
    arch = ("nor_conv_3x3", "nor_conv_3x3", "none", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_3x3")
    rep = space.canonical(arch)
    assert rep == (
        "nor_conv_3x3", "nor_conv_3x3", "none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"
    )  # fmt: skip
    plain = OneShotEvaluator(supernet, calib, val, metric="loss")
    canonical = OneShotEvaluator(supernet, calib, val, metric="loss", canonical=True)
    (a, r), (ca, cr) = ([s.value for s in e.evaluate([arch, rep])] for e in (plain, canonical))
    assert a != r  # the two spellings are two paths of the supernet
    assert ca == cr == r  # canonical: both scored by the representative's path
