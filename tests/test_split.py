"""NAS-LID: the LID estimate, op splits, restrictions that partition the space, routing, the
split stage on offline data, and the gradient-matching comparison behind the same interface."""

import itertools
import math
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from nas.errors import ConfigError, NasError
from nas.evaluate.base import Cost, Score
from nas.evaluate.proxies import lid_mle
from nas.export.subnet import build_subnet, load_subnet
from nas.files import SUBNET_FILE, SUPERNET_FILE
from nas.io import read_json
from nas.pipeline import run
from nas.search import SupernetModule
from nas.search.checkpoints import module_from_checkpoint
from nas.spaces import NB201_OPS, get_space
from nas.split.measure import affinities, bipartition, choose_split, cosine_similarity
from nas.split.restriction import Restriction
from nas.split.routed import RoutedEvaluator, route
from nas.supernet import build_supernet
from tests.conftest import ROOT

SPACE = get_space("nb201")


@pytest.mark.parametrize("dim", [3, 6])
def test_lid_of_a_curved_manifold_in_64_dimensions_is_its_dimension(dim):
    """Points on a smooth ``dim``-dimensional manifold (a random nonlinear map of a ``dim``-cube)
    embedded in 64 dimensions: the MLE of the local intrinsic dimension is close to ``dim``."""
    g = torch.Generator().manual_seed(dim)
    t = torch.rand(4000, dim, generator=g, dtype=torch.float64)
    a = torch.randn(dim, 64, generator=g, dtype=torch.float64)
    b = torch.randn(dim, 64, generator=g, dtype=torch.float64)
    points = torch.cat([t @ a, torch.sin(2 * t @ b)], dim=1)  # [4000, 128]
    estimate = lid_mle(points, k=20).median().item()
    assert estimate == pytest.approx(dim, rel=0.2)


def test_bipartition_splits_the_ops_in_two_disjoint_groups_along_the_similarity():
    ops = [0, 1, 2, 3, 4]
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.95, 0.05]])
    alike = torch.ones(5, 2) + 0.01 * torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    two, one = affinities([cosine_similarity(vectors), cosine_similarity(alike)])
    part = bipartition(ops, two)
    a, b = map(set, part.groups)
    assert a and b and not a & b and a | b == set(ops)
    assert {frozenset(a), frozenset(b)} == {frozenset({0, 1, 4}), frozenset({2, 3})}
    assert part.cut < 0.5 < bipartition(ops, one).cut  # alike ops: no clean cut
    # on its own scale the alike edge would look separable: the scale must be shared
    assert bipartition(ops, affinities([cosine_similarity(alike)])[0]).cut < 0.5


def test_affinities_share_one_scale_and_read_alike_ops_as_fully_affine():
    similar = np.array([[1.0, 0.999], [0.999, 1.0]])
    apart = np.array([[1.0, 0.9], [0.9, 1.0]])
    a, b = affinities([similar, apart])
    assert np.allclose(np.diag(a), 1) and np.allclose(a, a.T) and (a > 0).all()
    assert b[0, 1] < a[0, 1]  # farther apart, less affine, on the same scale
    assert [x[0, 1] for x in affinities([np.ones((2, 2)), np.ones((2, 2))])] == [1.0, 1.0]


def _tree(levels: int) -> list[Restriction]:
    """Leaves of a tree that splits a random splittable edge of each leaf into two groups."""
    rng = random.Random(levels)
    leaves = [Restriction.full(SPACE)]
    for _ in range(levels):
        new = []
        for leaf in leaves:
            kind, edge = rng.choice(leaf.splittable())
            ops = list(leaf.allowed[kind][edge])
            rng.shuffle(ops)
            cut = rng.randrange(1, len(ops))
            new += [leaf.narrowed(kind, edge, ops[:cut]), leaf.narrowed(kind, edge, ops[cut:])]
        leaves = new
    return leaves


class Constant:
    source = "oneshot"
    space = SPACE

    def __init__(self, value: float) -> None:
        self.value = value
        self.asked: list = []

    def evaluate(self, archs):
        self.asked += archs
        return [Score(self.value, "oneshot", Cost()) for _ in archs]


def test_routing_sends_every_nb201_arch_to_exactly_one_sub_supernet():
    leaves = _tree(3)
    routed = RoutedEvaluator(SPACE, [(r, Constant(float(i))) for i, r in enumerate(leaves)])
    archs = list(itertools.product(NB201_OPS, repeat=6))
    counts = [0] * len(leaves)
    for arch in archs:
        counts[routed.route(arch)] += 1
    # each leaf gets exactly its own archs: the product of its edges' allowed ops
    assert counts == [math.prod(len(ops) for ops in r.allowed["cell"]) for r in leaves]
    sample = archs[::997]
    scores = routed.evaluate(sample)  # in the order asked, each by its own leaf
    assert [s.value for s in scores] == [float(routed.route(a)) for a in sample]
    overlapping = [(Restriction.full(SPACE), Constant(0.0)), (leaves[0], Constant(1.0))]
    inside = next(a for a in archs if leaves[0].allows(a))
    with pytest.raises(ValueError, match="allowed by 2 sub-supernets, not one"):
        RoutedEvaluator(SPACE, overlapping).route(inside)


@pytest.mark.parametrize("method", ["lid", "gm"])
def test_both_comparisons_choose_a_split_and_leave_the_supernet_as_it_was(method):
    torch.manual_seed(0)
    net = build_supernet(SPACE, 10, c=4, n_cells=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batches = [(torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,)))]
    split = choose_split(net, Restriction.full(SPACE), batches, method, paths=1)
    assert set(split.cuts) == {f"cell:{e}" for e in range(6)}
    assert split.cuts[f"{split.kind}:{split.edge}"] == min(split.cuts.values())
    a, b = map(set, split.groups)
    assert a and b and not a & b and a | b == set(range(5))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_split_needs_independent_edges(tiny_cfg):
    with pytest.raises(ConfigError, match="space=nb201"):
        run(tiny_cfg("search=nas_lid"))  # tiny_cfg's space is darts


@pytest.mark.slow
@pytest.mark.parametrize("search", ["nas_lid", "gm"])
def test_the_split_search_runs_the_pipeline_on_digits(search, tiny_cfg, tmp_path):
    """``search=nas_lid`` (and ``gm``) on the offline digits: the split writes two fine-tuned
    sub-supernets, the sample and evolve stages score every arch with its own, and the
    export takes the final arch's weights from it."""
    result = run(
        tiny_cfg(
            "dataset=digits",
            "space=nb201",
            f"search={search}",
            "stages=[search,derive,finetune,split,sample,evolve,export]",
            "split.levels=1",
            "split.epochs=1",
            "split.batches=1",
            "split.paths=1",
            "sample.size=6",
            "evolution.budget=4",
            "oneshot.batch_size=32",
            "export.onnx=false",
            "export.plots=false",
        )
    )
    tree = read_json(tmp_path / "splits.json")
    assert tree["done"] and tree["level"] == 1 and len(tree["leaves"]) == 2
    assert all((tmp_path / leaf["file"]).exists() for leaf in tree["leaves"])
    (split,) = tree["splits"]
    assert sorted([*split["groups"][0], *split["groups"][1]]) == list(range(5))
    assert len(tree["peak_mb"]) == 1

    # the exported subnet carries the weights of the sub-supernet its arch routes to, not
    # those of the unsplit supernet the split started from (the searched one: these
    # searches' finetune.epochs is 0)
    arch = SPACE.from_json(result.final)
    exported, record = load_subnet(tmp_path / SUBNET_FILE)
    assert record["arch"] == SPACE.to_str(arch)
    restrictions = [Restriction.from_json(SPACE, leaf["allowed"]) for leaf in tree["leaves"]]
    leaf = tree["leaves"][route(restrictions, arch)]

    def parameters(checkpoint):  # the arch's parameters as that supernet holds them
        supernet = module_from_checkpoint(SupernetModule, checkpoint).supernet
        net = build_subnet(
            SPACE,
            arch,
            record["num_classes"],
            record["in_channels"],
            record["supernet"],
            supernet.state_dict(),
        )
        return dict(net.named_parameters())

    ours = dict(exported.named_parameters())
    from_leaf = parameters(tmp_path / leaf["file"])
    unsplit = parameters(tmp_path / SUPERNET_FILE)
    assert ours.keys() == from_leaf.keys() == unsplit.keys()
    assert all(torch.equal(ours[k], from_leaf[k]) for k in ours)
    assert not all(torch.equal(ours[k], unsplit[k]) for k in ours)


def test_a_split_of_another_method_is_not_continued(tiny_cfg, tmp_path):
    (tmp_path / "splits.json").write_text('{"method": "gm", "level": 0, "done": false}')
    with pytest.raises(NasError, match=r"splits\.json holds a split by split\.method=gm, not lid"):
        run(tiny_cfg("space=nb201", "search=nas_lid", "stages=[split]"))


PEAK_OF_A_BLOCK = """
import sys, time, torch
from nas import memory
if sys.argv[1] == "sampled":  # as in a sandbox whose /proc refuses the reset
    memory.reset_high_water_mark = lambda: False
elif not memory.reset_high_water_mark():
    sys.exit(3)
earlier = torch.ones(400 * 2**20 // 4)  # a 400 MB peak before the block
del earlier
with memory.PeakMemory(torch.device("cpu")) as peak:
    block = torch.ones(100 * 2**20 // 4)  # 100 MB inside it
    time.sleep(0.05)
    del block
print(peak.mb)
"""


@pytest.mark.parametrize("high_water_mark", ["reset", "sampled"])
def test_peak_memory_of_a_block_is_not_hidden_by_an_earlier_higher_peak(high_water_mark):
    # a fresh process, as the bench measures: a long test session's other threads and
    # allocator state would blur a 100 MB reading
    done = subprocess.run(
        [sys.executable, "-c", PEAK_OF_A_BLOCK, high_water_mark],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == 3:
        pytest.skip("this kernel's /proc does not allow resetting VmHWM")
    assert done.returncode == 0, done.stderr
    assert 80 < float(done.stdout) < 200
