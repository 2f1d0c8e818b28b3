"""Zero-cost proxies: registry errors, definitions on hand-checkable nets, invariants on NB201."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas.evaluate.proxies import available_proxies, compute_proxy, get_proxy, lid_mle
from nas.evaluate.proxy import ProxyEvaluator
from nas.spaces import NB201Space
from tests.conftest import NB201_MIXED

ALL_NONE = ("none",) * 6


@pytest.fixture(scope="module")
def space():
    return NB201Space(c=8, n_cells=1)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 3, 16, 16, generator=g), torch.randint(0, 10, (16,), generator=g)


def test_registry_lists_every_proxy():
    assert set(available_proxies()) >= {
        "epsilon",
        "synflow",
        "naswot",
        "snip",
        "grad_norm",
        "jacov",
        "lid",
    }


def test_unknown_proxy_lists_valid_names(batch):
    with pytest.raises(KeyError, match=r"epsilon.*synflow"):
        get_proxy("zen")
    with pytest.raises(KeyError, match="known proxies"):
        ProxyEvaluator(NB201Space(), "synflo", batch[0])


def test_proxy_needing_labels_refuses_none(space, batch):
    net = space.build_subnet(NB201_MIXED, 10)
    with pytest.raises(ValueError, match="needs targets"):
        compute_proxy("snip", net, batch[0], None, batch_size=8)


def test_epsilon_ignores_labels_and_is_deterministic(space, batch):
    x, y = batch
    net = space.build_subnet(NB201_MIXED, 10)
    a = compute_proxy("epsilon", net, x, y, batch_size=16)
    b = compute_proxy("epsilon", net, x, torch.zeros_like(y), batch_size=16)
    c = compute_proxy("epsilon", net, x, None, batch_size=16)
    assert torch.isfinite(a) and a > 0
    assert a.item() == b.item() == c.item()


def test_epsilon_is_zero_for_a_positively_homogeneous_net(batch):
    # constant weights scale a bias-free linear/ReLU net's output; min-max removes the scale
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4), nn.ReLU(), nn.Linear(4, 2))
    assert compute_proxy("epsilon", net, batch[0], batch_size=16).item() == pytest.approx(
        0, abs=1e-5
    )


def test_epsilon_leaves_the_callers_net_alone(space, batch):
    net = space.build_subnet(NB201_MIXED, 10)
    before = [p.clone() for p in net.parameters()]
    compute_proxy("epsilon", net, batch[0], batch_size=16)
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters(), strict=True))


def test_synflow_of_a_linear_net_is_layers_times_output():
    # for a net linear in each layer's weights, sum_w |w * dR/dw| over one layer is R itself
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False), nn.Linear(5, 3, bias=False))
    w1, w2 = net[1].weight.abs().double(), net[2].weight.abs().double()
    r = (w2 @ w1 @ torch.ones(12, dtype=torch.float64)).sum()
    score = compute_proxy("synflow", net, torch.randn(4, 3, 2, 2))
    assert score.item() == pytest.approx(2 * r.item(), rel=1e-9)


def test_synflow_is_non_negative_and_ignores_the_data(space, batch):
    net = space.build_subnet(NB201_MIXED, 10)
    a = compute_proxy("synflow", net, batch[0])
    b = compute_proxy("synflow", net, -batch[0])
    assert a.item() > 0 and a.item() == b.item()


def test_naswot_matches_the_hamming_kernel():
    torch.manual_seed(0)
    x = torch.randn(6, 1, 2, 5)
    net = nn.Sequential(nn.Flatten(), nn.ReLU())
    codes = (x.flatten(1) > 0).numpy()
    kernel = (codes[:, None, :] == codes[None, :, :]).sum(-1).astype(float)
    expected = np.linalg.slogdet(kernel)[1]
    assert compute_proxy("naswot", net, x, batch_size=6).item() == pytest.approx(expected)


def test_lid_mle_recovers_the_dimension_of_a_plane():
    g = torch.Generator().manual_seed(0)
    plane = torch.rand(400, 2, generator=g) @ torch.randn(2, 10, generator=g)
    assert lid_mle(plane, k=20).mean().item() == pytest.approx(2.0, abs=0.4)
    with pytest.raises(ValueError, match="more than 20"):
        lid_mle(plane[:20], k=20)


def test_lid_is_a_vector_over_layers(space, batch):
    net = space.build_subnet(NB201_MIXED, 10)
    v = compute_proxy("lid", net, batch[0], batch_size=16, k=5)
    assert v.shape == (3 * space.n_cells + 2,) and torch.isfinite(v).all() and (v > 0).all()


@pytest.mark.parametrize(
    "name", ["epsilon", "synflow", "naswot", "snip", "grad_norm", "jacov", "lid"]
)
def test_none_only_cell_gets_the_worst_score(space, batch, name):
    x, y = batch
    options = {"k": 5} if name == "lid" else {}
    evaluator = ProxyEvaluator(
        space, name, x, y, batch_size=None if name == "synflow" else 16, **options
    )
    worst, good = evaluator.evaluate([ALL_NONE, NB201_MIXED])
    assert worst.source == good.source == f"proxy:{name}"
    assert math.isfinite(good.value) and good.cost.seconds > 0
    assert worst.value < good.value
    if get_proxy(name).labels or name == "synflow":  # sums of magnitudes: zero, their minimum
        assert worst.value == 0.0
    else:
        assert worst.value == -math.inf


def test_proxy_evaluator_is_deterministic(space, batch):
    evaluator = ProxyEvaluator(space, "grad_norm", *batch, seed=3, batch_size=16)
    assert evaluator.evaluate([NB201_MIXED])[0].value == evaluator.evaluate([NB201_MIXED])[0].value


# -- device: every tensor a proxy makes goes on the device of its inputs ------------------------
# A tensor made without ``device=inputs.device`` lands on torch's default device: the CPU, which
# breaks (naswot) or misplaces (jacov, snip, ...) a CUDA run. With the default device set to
# 'meta', such a tensor turns the result into a meta tensor, so a CPU-only run catches the
# defect class; tests/test_cuda.py runs the proxies on a GPU itself.
def _options(name: str) -> dict[str, object]:
    return {"batch_size": None if name == "synflow" else 16, **({"k": 5} if name == "lid" else {})}


@pytest.mark.parametrize("arch", [NB201_MIXED, ALL_NONE], ids=["mixed", "none"])
@pytest.mark.parametrize("name", available_proxies())
def test_proxy_makes_its_tensors_on_the_inputs_device(space, batch, name, arch):
    x, y = batch
    net = space.build_subnet(arch, 10)
    with torch.device("meta"):
        value = compute_proxy(name, net, x, y, **_options(name))
    assert value.device == x.device


class _InputFree(nn.Module):
    """Logits that do not depend on the input (jacov's no-gradient case)."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def test_jacov_of_an_input_free_net_is_nan_on_the_inputs_device(batch):
    net = _InputFree()
    with torch.device("meta"):
        value = compute_proxy("jacov", net, batch[0], batch_size=16)
    assert value.device == batch[0].device and value.isnan()


def test_proxy_evaluator_builds_the_same_weights_whatever_the_default_device(space, batch):
    evaluator = ProxyEvaluator(space, "naswot", *batch, batch_size=16)
    with torch.device("meta"):
        raw = evaluator.raw(NB201_MIXED)
    assert raw.device == batch[0].device
    assert raw.item() == evaluator.raw(NB201_MIXED).item()


def test_seeded_draws_leave_every_other_generator_alone(space, batch, monkeypatch):
    """A proxy's weight initialisation and DrNAS' Dirichlet draws reseed the CPU generator
    only, inside a fork that restores it: no CUDA generator is reseeded, the caller's CPU
    random stream continues where it was."""
    from nas.search.drnas import DrnasStrategy

    cuda_seeds: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", cuda_seeds.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", cuda_seeds.append)
    x, y = batch
    strategy = DrnasStrategy(space)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    cuda_seeds.clear()
    ProxyEvaluator(space, "synflow", x, y, num_classes=4, seed=3).evaluate([NB201_MIXED])
    strategy.op_weights()
    assert torch.equal(torch.rand(3), expected) and cuda_seeds == []
