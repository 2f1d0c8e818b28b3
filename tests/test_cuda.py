"""CUDA: proxies, evaluators and supernets on a GPU give what they give on the CPU.

Every test here is skipped without CUDA; run them on a GPU machine with
``pytest tests/test_cuda.py``. TF32 is off so CPU and GPU compute in the same precision.
"""

import copy
import math
import random

import pytest
import torch
from torch import nn

from nas.evaluate.oneshot import OneShotEvaluator
from nas.evaluate.proxies import available_proxies, compute_proxy
from nas.evaluate.proxy import ProxyEvaluator
from nas.spaces import get_space
from nas.supernet import build_supernet
from tests.conftest import NB201_MIXED

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

CUDA = torch.device("cuda")
ALL_NONE = ("none",) * 6


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def space():
    return get_space("nb201", c=8, n_cells=1)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)


def _options(name: str) -> dict[str, object]:
    return {"batch_size": None if name == "synflow" else 32, **({"k": 5} if name == "lid" else {})}


def _assert_close(gpu: torch.Tensor, cpu: torch.Tensor, rtol: float = 1e-3) -> None:
    assert gpu.device.type == "cuda" and gpu.shape == cpu.shape
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=rtol, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", available_proxies())
def test_proxy_on_cuda_matches_cpu(space, batch, name):
    x, y = batch
    torch.manual_seed(0)
    net = space.build_subnet(NB201_MIXED, 10)
    cpu = compute_proxy(name, net, x, y, **_options(name)).detach()
    gpu = compute_proxy(name, net.to(CUDA), x.to(CUDA), y.to(CUDA), **_options(name)).detach()
    _assert_close(gpu, cpu)


@pytest.mark.parametrize("name", available_proxies())
def test_proxy_evaluator_on_cuda_matches_cpu(space, batch, name):
    x, y = batch
    options = _options(name)
    cpu = ProxyEvaluator(space, name, x, y, **options)
    gpu = ProxyEvaluator(space, name, x.to(CUDA), y.to(CUDA), **options)
    for arch in (NB201_MIXED, ALL_NONE):
        _assert_close(gpu.raw(arch), cpu.raw(arch))
    (worst_gpu, good_gpu), (worst_cpu, good_cpu) = (
        e.evaluate([ALL_NONE, NB201_MIXED]) for e in (gpu, cpu)
    )
    assert worst_gpu.value == worst_cpu.value
    assert math.isfinite(good_gpu.value)
    assert good_gpu.value == pytest.approx(good_cpu.value, rel=1e-3)


def test_oneshot_evaluator_on_cuda_matches_cpu():
    torch.manual_seed(0)
    space = get_space("nb201")
    supernet = build_supernet(space, num_classes=10, in_channels=3, c=4, n_cells=1)
    calib = [torch.randn(16, 3, 8, 8) for _ in range(2)]
    val = [(torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,))) for _ in range(2)]
    archs = [NB201_MIXED, ("skip_connect", "nor_conv_1x1", "none") * 2]
    on_cpu = OneShotEvaluator(copy.deepcopy(supernet), calib, val).evaluate(archs)
    gpu_net = copy.deepcopy(supernet).to(CUDA)
    before = {k: v.clone() for k, v in gpu_net.state_dict().items()}
    on_gpu = OneShotEvaluator(gpu_net, calib, val).evaluate(archs)
    one_image = 100.0 / 64
    for g, c in zip(on_gpu, on_cpu, strict=True):
        assert g.source == "oneshot" and abs(g.value - c.value) <= one_image
    after = gpu_net.state_dict()
    assert all(
        after[k].device.type == "cuda" and torch.equal(after[k], v) for k, v in before.items()
    )


def _supernet(space_name: str, backend: str) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    space = get_space(space_name)
    size = {"n_cells": 1} if space_name == "nb201" else {"layers": 3}
    net = build_supernet(space, num_classes=10, in_channels=3, c=4, backend=backend, **size)
    # DARTS-style mixed weights: every op of every edge runs
    alphas = {
        k: torch.randn_like(w) for k, w in space.one_hot(space.sample(random.Random(0))).items()
    }
    return net, alphas


@pytest.mark.parametrize(
    ("space_name", "backend"),
    [
        ("nb201", "lean"),
        ("nb201", "plain"),
        ("darts", "lean"),
        ("darts", "plain"),
        ("darts", "grouped"),
    ],
)
def test_supernet_forward_backward_on_cuda_under_bf16_autocast(space_name, backend):
    torch.manual_seed(0)
    net, alphas = _supernet(space_name, backend)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    with torch.no_grad():
        reference = net(x, {k: a.softmax(-1) for k, a in alphas.items()})
    net = net.to(CUDA)
    alphas = {k: a.to(CUDA).requires_grad_(True) for k, a in alphas.items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = net(x.to(CUDA), {k: a.softmax(-1) for k, a in alphas.items()})
    assert logits.device.type == "cuda" and torch.isfinite(logits).all()
    err = (logits.float().cpu() - reference).norm() / reference.norm()
    assert err < 0.05  # bf16 keeps ~3 significant digits
    nn.functional.cross_entropy(logits.float(), y.to(CUDA)).backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad] + [
        a.grad for a in alphas.values()
    ]
    assert all(g is not None and g.device.type == "cuda" and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    ("precision", "backend"),
    [("32-true", "plain"), ("bf16-mixed", "plain"), ("bf16-mixed", "grouped")],
)
def test_search_with_cuda_graphs_trains_as_the_eager_search(tmp_path, precision, backend):
    """Two epochs of 8 bi-level steps (3 eager warm-up steps, then graphs; a β-decay weight
    that changes in the second epoch) and of 2 validation batches (the fourth one replayed):
    the same alphas, weights, step count and validation loss."""
    from nas.search import build_trainer
    from tests.conftest import compose_cfg, search_module, tiny

    torch.backends.cudnn.deterministic = True
    results = []
    for graph in ("false", "true"):
        cfg = compose_cfg(
            *tiny(f"paths.output_dir={tmp_path / graph}", "trainer=gpu"),
            f"trainer.precision={precision}",
            f"space.supernet.backend={backend}",
            "trainer.deterministic=false",
            f"search.cuda_graph={graph}",
            "search.epochs=2",
            "search.beta_weight=0.5",
            "dataset.n_train=256",
        )
        dm, module = search_module(cfg)
        trainer = build_trainer(cfg, tmp_path / graph)
        trainer.fit(module, datamodule=dm)
        assert (module._graphs is not None) == (graph == "true")
        if graph == "true":
            assert all(map(module._graphs.captured, ("arch", "weights", "val")))
        val_loss = trainer.callback_metrics["val/loss"]
        results.append((trainer.global_step, module.strategy, module.supernet, val_loss))
    (steps, eager_alphas, eager_net, eager_val), (graph_steps, alphas, net, val) = results
    assert graph_steps == steps == 2 * 2 * 8  # two optimisers, two epochs, 8 steps
    tol = {"rtol": 1e-4, "atol": 1e-5} if precision == "32-true" else {"rtol": 2e-2, "atol": 2e-3}
    for (name, p), q in zip(alphas.named_parameters(), eager_alphas.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name, **tol)
    for (name, p), q in zip(net.state_dict().items(), eager_net.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, msg=name, **tol)
    torch.testing.assert_close(val, eager_val, **tol)
