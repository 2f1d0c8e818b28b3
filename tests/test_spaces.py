import random

import pytest
import torch

from nas.spaces import DARTS_OPS, NB201_OPS, ArchError, Genotype, get_space
from nas.spaces.darts import EDGE_INDEX
from nas.spaces.ops import cat_channels

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# DARTS_V2 as published in the DARTS paper's code (genotypes.py), with range() concat.
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
)


@pytest.fixture(params=["nb201", "darts"])
def space(request):
    return get_space(request.param)


def test_nb201_official_string_round_trips():
    nb = get_space("nb201")
    arch = nb.from_str(NB201_BEST)
    assert arch == (
        "nor_conv_3x3",
        "nor_conv_3x3",
        "nor_conv_3x3",
        "skip_connect",
        "nor_conv_3x3",
        "nor_conv_3x3",
    )
    assert nb.to_str(arch) == NB201_BEST


def test_darts_paper_genotype_parses_and_round_trips():
    darts = get_space("darts")
    arch = darts.from_str(DARTS_V2)
    assert isinstance(arch, Genotype)
    assert arch.reduce_concat == (2, 3, 4, 5)
    # genes of a node are sorted by input: node 2 of the normal cell reads (0, 1)
    assert arch.normal[4:6] == (("skip_connect", 0), ("sep_conv_3x3", 1))
    assert darts.from_str(darts.to_str(arch)) == arch
    assert hash(darts.from_str(darts.to_str(arch))) == hash(arch)


def test_random_archs_round_trip_and_hash(space):
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(50)]
    for arch in archs:
        assert space.from_str(space.to_str(arch)) == arch
        assert space.from_json(space.to_json(arch)) == arch
    assert len(set(archs)) > 40


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("nb201", "|nor_conv_3x3~0|+|conv_7x7~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"),
        (
            "nb201",
            "|nor_conv_3x3~0|+|nor_conv_3x3~1|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
        ),
        ("nb201", "|nor_conv_3x3~0|"),
        ("darts", DARTS_V2.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1)),  # input twice
        (
            "darts",
            DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),
        ),  # input out of range
        ("darts", DARTS_V2.replace("('skip_connect', 0)", "('none', 0)", 1)),  # 'none' is no gene
        ("darts", "Genotype(normal=[], reduce=[])"),
        ("darts", "__import__('os').system('true')"),
    ],
)
def test_bad_strings_raise_arch_error(name, bad):
    with pytest.raises(ArchError):
        get_space(name).from_str(bad)


def test_neighbours_are_exactly_distance_one(space):
    arch = space.sample(random.Random(1))
    neighbours = space.neighbours(arch)
    assert len(neighbours) == len(set(neighbours))
    assert arch not in neighbours
    assert all(space.distance(arch, n) == 1 for n in neighbours)
    expected = 6 * 4 if space.name == "nb201" else 2 * sum(2 * ((i + 1) * 7 - 1) for i in range(4))
    assert len(neighbours) == expected
    rng = random.Random(2)
    assert all(space.distance(arch, space.mutate(arch, rng)) == 1 for _ in range(20))


def test_distance_is_a_metric_on_samples(space):
    rng = random.Random(3)
    a, b, c = (space.sample(rng) for _ in range(3))
    assert space.distance(a, a) == 0
    assert space.distance(a, b) == space.distance(b, a)
    assert space.distance(a, c) <= space.distance(a, b) + space.distance(b, c)


def test_one_hot_and_encode_shapes(space):
    arch = space.sample(random.Random(4))
    one_hot = space.one_hot(arch)
    space.check_weights(one_hot)
    for w in one_hot.values():
        assert torch.equal(w.sum(1), torch.ones(w.shape[0]))
    enc = space.encode(arch)
    assert enc.shape == (space.encoding_size,)
    # a derived arch's one-hot derives back to the same arch
    assert space.derive(one_hot) == arch


def test_nb201_derive_is_argmax_per_edge():
    nb = get_space("nb201")
    w = torch.zeros(6, 5)
    for e, k in enumerate([3, 0, 1, 2, 4, 3]):
        w[e, k] = 1.0
    assert nb.derive({"cell": w}) == tuple(NB201_OPS[k] for k in [3, 0, 1, 2, 4, 3])


def test_darts_derive_keeps_two_strongest_inputs_ignoring_none():
    darts = get_space("darts")
    w = torch.full((14, 8), 0.1)
    # node 0: inputs 0 and 1 only.  node 1 (inputs 0, 1, 2): 'none' is strongest on input 0,
    # but only non-none weights rank edges, so inputs 1 (sep 5x5) and 2 (dil 3x3) win.
    w[EDGE_INDEX[(1, 0)], DARTS_OPS.index("none")] = 0.9
    w[EDGE_INDEX[(1, 1)], DARTS_OPS.index("sep_conv_5x5")] = 0.5
    w[EDGE_INDEX[(1, 2)], DARTS_OPS.index("dil_conv_3x3")] = 0.4
    w[EDGE_INDEX[(0, 1)], DARTS_OPS.index("max_pool_3x3")] = 0.3
    arch = darts.derive({"normal": w, "reduce": w.clone()})
    assert arch.normal[2:4] == (("sep_conv_5x5", 1), ("dil_conv_3x3", 2))
    assert ("max_pool_3x3", 1) in arch.normal[0:2]


def test_derive_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shape"):
        get_space("darts").derive({"normal": torch.zeros(14, 7), "reduce": torch.zeros(14, 8)})
    with pytest.raises(ValueError, match="cell kinds"):
        get_space("nb201").derive({"normal": torch.zeros(6, 5)})


def test_unknown_space_lists_known():
    with pytest.raises(KeyError, match="darts"):
        get_space("nasnet")


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_standalone_subnet_learns(name):
    """A standalone subnet is a trainable classifier: it fits a fixed batch."""
    space = get_space(
        name, **({"c": 8, "n_cells": 1} if name == "nb201" else {"c": 8, "layers": 3})
    )
    torch.manual_seed(0)
    arch = space.sample(random.Random(5))
    if name == "nb201":  # a cell that passes something through
        arch = ("nor_conv_3x3",) * 6
    net = space.build_subnet(arch, num_classes=7, in_channels=1)
    x, y = torch.randn(16, 1, 16, 16), torch.arange(16) % 7
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("channels_last", [True, False])
def test_cat_channels_is_cat_with_dense_gradients_in_channels_last(channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    xs = [
        torch.randn(2, c, 3, 4, generator=g).contiguous(memory_format=fmt).requires_grad_()
        for c in (2, 3)
    ]
    out = cat_channels(xs)
    torch.testing.assert_close(out, torch.cat(xs, dim=1), rtol=0, atol=0)
    upstream = torch.randn(out.shape, generator=g).contiguous(memory_format=fmt)
    grads = torch.autograd.grad(out, xs, upstream)
    for grad, expected in zip(grads, upstream.split([2, 3], dim=1), strict=True):
        torch.testing.assert_close(grad, expected, rtol=0, atol=0)
        # channels_last: dense copies; otherwise the output gradient's slices, as torch.cat's
        assert grad.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert (grad.data_ptr() == expected.data_ptr()) != channels_last


def test_a_bad_op_in_an_arch_string_names_its_position_and_the_allowed_ops():
    nb201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|conv_7x7~1|+|none~0|none~1|none~2|"
    with pytest.raises(ArchError, match=r"node 2, input 1 of .*'conv_7x7' is not one of \['none'"):
        get_space("nb201").from_str(nb201)
    darts = get_space("darts")
    genes = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)] * 4
    genes[5] = ("conv_7x7", 0)
    text = f"Genotype(normal={genes}, normal_concat=[2, 3, 4, 5], reduce={genes[:4] * 2}, reduce_concat=[2, 3, 4, 5])"
    with pytest.raises(
        ArchError, match=r"normal gene 5 \['conv_7x7', 0\] \(node 2\): op must be one of"
    ):
        darts.from_str(text)


_FIXED_OPS = {
    "none": torch.zeros_like,
    "skip_connect": lambda x: x,
    "nor_conv_1x1": lambda x: torch.tanh(2 * x),
    "nor_conv_3x3": lambda x: torch.sin(3 * x) + x * x,
    "avg_pool_3x3": lambda x: x * x.abs() - x,
}


class _FixedOp(torch.nn.Module):
    """An NB201 op as one fixed function per op kind, zero at zero (``none`` gives zeros)."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.f = _FIXED_OPS[op]

    def forward(self, x):
        return self.f(x)


def test_nb201_canonical_cells_compute_the_same_function():
    from nas.spaces.nb201 import NB201Cell

    space = get_space("nb201")
    reps = space.distinct_archs()
    assert len(reps) == len(set(reps)) == 5425
    x = torch.randn(64, dtype=torch.float64)

    def cell(arch):
        return NB201Cell([_FixedOp(op) for op in arch])(x)

    rng = random.Random(0)
    for _ in range(200):
        arch = space.sample(rng)
        rep = space.canonical(arch)
        assert rep in reps and space.canonical(rep) == rep
        assert rep.count("none") >= arch.count("none")
        torch.testing.assert_close(cell(rep), cell(arch))
    # distinct classes compute distinct functions (with these fixed ops, on random pairs)
    pairs = [(rng.choice(reps), rng.choice(reps)) for _ in range(200)]
    assert all(not torch.allclose(cell(a), cell(b)) for a, b in pairs if a != b)
