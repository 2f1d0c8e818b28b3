"""The supernet computes the reference DARTS search network's function, leaner."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from nas.spaces import DartsSpace, NB201Space
from nas.supernet import MixedOp, build_supernet, functional
from nas.supernet.functional import (
    batch_norm_saving_output,
    max_pool2d_recomputing,
    relu_conv2d,
)
from nas.supernet.reference import build_reference_supernet

SMALL = {"c": 4, "layers": 3}


def _alphas(space, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(e, len(space.op_names), generator=g, dtype=dtype).requires_grad_()
        for k, e in space.cell_edges.items()
    }


def _loss_and_grads(net, alphas, x, y):
    loss = F.cross_entropy(net(x, {k: a.softmax(-1) for k, a in alphas.items()}), y)
    loss.backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    return loss.detach(), grads | {f"alpha.{k}": a.grad for k, a in alphas.items()}


def _batch(dtype=torch.float64, size=8, n=4):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, size, size, generator=g, dtype=dtype), torch.randint(0, 10, (n,))


@pytest.mark.parametrize("options", [{}, {"channels_last": False}, {"backend": "plain"}])
def test_darts_gradients_equal_reference(options):
    """Same loss, weight gradients, alpha gradients and BN statistics as the paper's network."""
    space = DartsSpace()
    torch.manual_seed(0)
    ours = build_supernet(space, 10, **SMALL, **options)
    ref = build_reference_supernet(space, 10, **SMALL, copy_from=ours).double()
    ours.double()
    x, y = _batch()
    l_ours, g_ours = _loss_and_grads(ours, _alphas(space), x, y)
    l_ref, g_ref = _loss_and_grads(ref, _alphas(space), x, y)
    torch.testing.assert_close(l_ours, l_ref, rtol=1e-10, atol=0)
    assert g_ours.keys() == g_ref.keys()
    for name, g in g_ref.items():
        torch.testing.assert_close(g_ours[name], g, rtol=1e-7, atol=1e-10, msg=name)
    for (name, b), b_ref in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        torch.testing.assert_close(b, b_ref, rtol=1e-7, atol=1e-10, msg=name)


@pytest.mark.parametrize("partial", [1, 2])
def test_nb201_lean_equals_plain(partial):
    space = NB201Space()
    torch.manual_seed(0)
    kw = {"c": 4, "n_cells": 1, "partial_channels": partial}
    lean = build_supernet(space, 10, **kw, backend="lean").double()
    plain = build_supernet(space, 10, **kw, backend="plain", channels_last=False).double()
    plain.load_state_dict(lean.state_dict())
    x, y = _batch(size=8)
    l_lean, g_lean = _loss_and_grads(lean, _alphas(space), x, y)
    l_plain, g_plain = _loss_and_grads(plain, _alphas(space), x, y)
    torch.testing.assert_close(l_lean, l_plain, rtol=1e-10, atol=0)
    for name, g in g_plain.items():
        torch.testing.assert_close(g_lean[name], g, rtol=1e-7, atol=1e-10, msg=name)


@pytest.mark.parametrize("backend", ["lean", "plain"])
def test_single_path_runs_only_its_ops(monkeypatch, backend):
    space = DartsSpace()
    net = build_supernet(space, 10, **SMALL, backend=backend)
    arch = space.sample(random.Random(0))
    one_hot = space.one_hot(arch)
    ran: list[tuple[int, str]] = []
    run_op = MixedOp.run_op

    def spy(self, k, x, scale):
        ran.append((id(self), self.op_names[k]))
        return run_op(self, k, x, scale)

    monkeypatch.setattr(MixedOp, "run_op", spy)
    net(torch.randn(2, 3, 16, 16), one_hot)
    expected = []
    for cell in net.net.cells:
        kind = "reduce" if cell.reduction else "normal"
        for e, edge in zip(cell.edge_ids, cell.edges, strict=True):
            op = space.op_names[int(one_hot[kind][e].argmax())]
            if op != "none":
                expected.append((id(edge), op))
    assert ran == expected
    assert len(ran) == len(net.net.cells) * 8  # 2 inputs of 4 nodes per cell


def test_saves_less_than_half_of_reference_for_backward():
    """Bytes stored for backward in an alpha step (every op output's storage counted once)."""
    space = DartsSpace()
    ours = build_supernet(space, 10, **SMALL)
    ref = build_reference_supernet(space, 10, **SMALL, copy_from=ours)

    def saved_bytes(net):
        storages: dict[int, int] = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        x, _ = _batch(torch.float32, n=8)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x, {k: a.float().softmax(-1) for k, a in _alphas(space).items()})
        return sum(storages.values())

    assert saved_bytes(ours) < 0.5 * saved_bytes(ref)


def test_darts_parameter_count_and_options():
    space = DartsSpace()
    net = build_supernet(space, 10)
    assert sum(p.numel() for p in net.parameters()) == 1_930_618
    with pytest.raises(TypeError, match="fast"):
        build_supernet(space, 10, fast=True)
    with pytest.raises(ValueError, match=r"space\.supernet\.backend"):
        build_supernet(space, 10, backend="fastest")
    with pytest.raises(ValueError, match=r"space\.supernet\.compile"):
        build_supernet(space, 10, compile="turbo")


def test_auto_backend_is_plain_on_cuda_and_lean_elsewhere():
    from nas.supernet import resolve_backend

    assert resolve_backend("auto", cuda=True) == "plain"
    assert resolve_backend("auto", cuda=False) == "lean"
    assert resolve_backend("lean", cuda=True) == "lean"
    mixed = build_supernet(DartsSpace(), 10, **SMALL, backend="plain").net.cells[0].edges[0]
    assert not mixed.lean


def test_bf16_autocast_step_matches_fp32():
    """Under bf16 autocast the loss and every gradient stay close to the fp32 step's."""
    space = DartsSpace()
    net = build_supernet(space, 10, **SMALL)
    alphas = _alphas(space, torch.float32)
    x, y = _batch(torch.float32)

    def step(autocast: bool):
        net.zero_grad()
        for a in alphas.values():
            a.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = net(x, {k: a.softmax(-1) for k, a in alphas.items()})
            loss = F.cross_entropy(logits, y)
        loss.backward()
        grads = [p.grad.clone() for p in [*net.parameters(), *alphas.values()]]
        return logits.dtype, loss.detach(), torch.cat([g.flatten() for g in grads])

    dtype, loss16, g16 = step(True)
    _, loss32, g32 = step(False)
    assert dtype == torch.bfloat16  # autocast really ran the network in bf16
    assert abs(loss16 - loss32) < 0.02 * loss32
    assert F.cosine_similarity(g16, g32, dim=0) > 0.97
    assert 0.9 < g16.norm() / g32.norm() < 1.1


def _grads(f, *inputs):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    out = f(*inputs)
    out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
    return out.detach(), [t.grad for t in inputs]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "groups", "pointwise"),
    [
        (3, 1, 2, 2, 4, True),  # dil_conv_3x3 (sub-grid phases)
        (5, 2, 4, 2, 4, True),  # dil_conv_5x5, reduction (sub-grid (0, 0))
        (5, 1, 2, 1, 4, True),  # sep_conv_5x5
        (5, 2, 2, 1, 4, True),  # sep_conv_5x5, reduction
        (5, 1, 4, 2, 4, True),  # dil_conv_5x5 (sub-grid phases)
        (1, 2, 0, 1, 1, False),  # factorized reduce's strided 1x1
        (3, 1, 2, 2, 4, False),
    ],
)
@pytest.mark.parametrize("size", [8, 7, 4])  # 4: 5x5 kernels taller than the input
def test_relu_conv2d_equals_relu_then_convs(
    channels_last, kernel, stride, padding, dilation, groups, pointwise, size
):
    """fp32 result and gradients (input, both weights) of the plain layers, to fp64 precision."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, size, size, generator=g)
    w = torch.randn(4, 4 // groups, kernel, kernel, generator=g)
    pw = torch.randn(6, 4, 1, 1, generator=g) if pointwise else None
    if channels_last:
        x, w = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))

    def plain(x, w, *pw):
        y = F.conv2d(F.relu(x), w, None, stride, padding, dilation, groups)
        return F.conv2d(y, pw[0]) if pw else y

    def lean(x, w, *pw):
        return relu_conv2d(x, w, stride, padding, dilation, groups, pw[0] if pw else None)

    tensors = [x, w, *([pw] if pointwise else [])]
    y_ref, g_ref = _grads(plain, *(t.double() for t in tensors))
    y, grads = _grads(lean, *tensors)
    torch.testing.assert_close(y.double(), y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, g_ref, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)


def test_batch_norm_saving_output_equals_batch_norm():
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64) * 3 + 1
    stats = [torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    ref_stats = [s.clone() for s in stats]
    y, (gx,) = _grads(lambda t: batch_norm_saving_output(t, *stats, 0.1, 1e-5), x)
    y_ref, (gx_ref,) = _grads(lambda t: F.batch_norm(t, *ref_stats, None, None, True, 0.1), x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(gx, gx_ref)
    for s, s_ref in zip(stats, ref_stats, strict=True):
        torch.testing.assert_close(s, s_ref)


@pytest.mark.parametrize("stride", [1, 2])
def test_max_pool2d_recomputing_equals_max_pool2d(stride):
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    y, (gx,) = _grads(lambda t: max_pool2d_recomputing(t, 3, stride, 1), x)
    y_ref, (gx_ref,) = _grads(lambda t: F.max_pool2d(t, 3, stride, 1), x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(gx, gx_ref)


def test_state_dict_is_shared_with_reference():
    """The lean execution keeps the op modules, so subnets and checkpoints see the same keys."""
    space = DartsSpace()
    ours = build_supernet(space, 10, **SMALL)
    ref = build_reference_supernet(space, 10, **SMALL)
    assert list(ours.state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize("backend", ["lean", "plain"])
def test_cell_computes_each_states_relu_once(monkeypatch, backend):
    """The first cell's ReLUs: one for its input (both preprocessings read the stem output),
    one per state with out-edges (5), and the inner ReLU of each sep_conv (14 edges x 2)."""
    space = DartsSpace()
    net = build_supernet(space, 10, **SMALL, backend=backend)
    calls = {"relu": 0, "in_cell": False}
    relu = torch.Tensor.relu

    def counting_relu(self):
        calls["relu"] += calls["in_cell"]
        return relu(self)

    monkeypatch.setattr(torch.Tensor, "relu", counting_relu)
    cell = net.net.cells[0]
    assert not cell.reduction
    cell.register_forward_pre_hook(lambda *_: calls.update(in_cell=True))
    cell.register_forward_hook(lambda *_: calls.update(in_cell=False))
    net(
        torch.randn(2, 3, 8, 8),
        {k: a.softmax(-1) for k, a in _alphas(space, torch.float32).items()},
    )
    assert calls["relu"] == 1 + 5 + 14 * 2


def test_shared_pooling_keeps_each_edges_running_statistics():
    """Single-path steps give each pooling BN its own history; a later all-ops step, whose
    pooling is shared, must still update each edge's statistics as its own forward would."""
    space = DartsSpace()
    torch.manual_seed(0)
    lean = build_supernet(space, 10, **SMALL, backend="lean")
    plain = build_supernet(space, 10, **SMALL, backend="plain", channels_last=False)
    plain.load_state_dict(lean.state_dict())
    rng = random.Random(0)
    steps = [space.one_hot(space.sample(rng)) for _ in range(3)]
    steps.append({k: a.float().softmax(-1) for k, a in _alphas(space).items()})
    x, _ = _batch(torch.float32)
    for weights in steps:
        lean(x, weights)
        plain(x, weights)
    for (name, b), b_plain in zip(
        lean.state_dict().items(), plain.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(b, b_plain, rtol=1e-5, atol=1e-6, msg=name)
    lean.eval()
    plain.eval()
    torch.testing.assert_close(lean(x, steps[-1]), plain(x, steps[-1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "pointwise"),
    [(3, 1, 2, 2, True), (5, 2, 4, 2, True), (5, 1, 2, 1, True), (1, 2, 0, 1, False)],
)
def test_relu_conv2d_input_gradient_with_frozen_weights(
    kernel, stride, padding, dilation, pointwise, monkeypatch
):
    """Frozen weights (an alpha step) skip the recomputations and every weight gradient, not
    the input gradient."""
    g = torch.Generator().manual_seed(0)
    groups = 4 if kernel > 1 else 1
    x = torch.randn(2, 4, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 4 // groups, kernel, kernel, generator=g)
    pw = torch.randn(6, 4, 1, 1, generator=g) if pointwise else None

    def lean(x, w, *pw):
        return relu_conv2d(x, w, stride, padding, dilation, groups, pw[0] if pw else None)

    tensors = [x, w, *([pw] if pointwise else [])]
    y, (gx, *_) = _grads(lean, *tensors)
    x_only = x.detach().clone().requires_grad_()
    y_frozen = lean(x_only, *tensors[1:])
    asked = []
    conv_backward = functional._conv_backward
    monkeypatch.setattr(
        functional, "_conv_backward", lambda *a: asked.append(a[-1]) or conv_backward(*a)
    )
    y_frozen.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    assert asked and all(need == (True, False) for need in asked)
    torch.testing.assert_close(y_frozen.detach(), y)
    torch.testing.assert_close(x_only.grad, gx)


class OpNames(TorchDispatchMode):
    """Records the name of each ATen operation dispatched inside it while ``on``."""

    def __init__(self) -> None:
        super().__init__()
        self.on, self.names = True, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.on:
            self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_plain_edge_scales_its_ops_in_their_batchnorms():
    """A plain dense edge multiplies by an op weight only where the op ends without a
    BatchNorm (skip_connect): the other weights are their last BatchNorms' weights."""
    space = DartsSpace()
    torch.manual_seed(0)
    edge = build_supernet(space, 10, **SMALL, backend="plain").net.cells[0].edges[0]
    w = torch.rand(len(space.op_names)).requires_grad_()
    x = torch.randn(2, edge.channels, 8, 8)
    with OpNames() as ops:
        out = edge(x, w, [True] * len(w))
    assert ops.names.count("mul") == 1
    expected = sum(w[k] * op(x) for k, op in enumerate(edge.ops) if k != 0)  # 0: none
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    "options",
    [{}, {"channels_last": False}, {"affine": True}, {"partial_channels": 2}],
    ids=["cl", "nchw", "affine", "partial"],
)
def test_grouped_backend_computes_what_plain_does(options):
    """Loss, every gradient and every BatchNorm buffer after a dense step; then single paths
    (run per edge) and eval mode (the running statistics grouped)."""
    space = DartsSpace()
    torch.manual_seed(0)
    plain = build_supernet(space, 10, **SMALL, backend="plain", **options).double()
    grouped = build_supernet(space, 10, **SMALL, backend="grouped", **options).double()
    with torch.no_grad():  # affine BatchNorms away from their 1 / 0 start
        for p in plain.parameters():
            if p.dim() == 1:  # BatchNorm weights and biases (and the classifier's bias)
                p.uniform_(0.5, 1.5)
    grouped.load_state_dict(plain.state_dict())
    x, y = _batch()
    l_plain, g_plain = _loss_and_grads(plain, _alphas(space), x, y)
    l_grouped, g_grouped = _loss_and_grads(grouped, _alphas(space), x, y)
    torch.testing.assert_close(l_grouped, l_plain, rtol=1e-10, atol=0)
    for name, g in g_plain.items():
        torch.testing.assert_close(g_grouped[name], g, rtol=1e-7, atol=1e-10, msg=name)
    for (name, b), b_plain in zip(
        grouped.state_dict().items(), plain.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(b, b_plain, rtol=1e-7, atol=1e-10, msg=name)
    one_hot = {k: w.double() for k, w in space.one_hot(space.sample(random.Random(0))).items()}
    torch.testing.assert_close(grouped(x, one_hot), plain(x, one_hot))
    dense = {k: a.softmax(-1) for k, a in _alphas(space).items()}
    plain.eval()
    grouped.eval()
    torch.testing.assert_close(grouped(x, dense), plain(x, dense), rtol=1e-7, atol=1e-10)


def _first_cell_convolutions(backend: str) -> int:
    """Convolutions run by the first (normal) cell of a dense forward."""
    space = DartsSpace()
    net = build_supernet(space, 10, **SMALL, backend=backend)
    ops = OpNames()
    ops.on = False
    cell = net.net.cells[0]
    assert not cell.reduction
    cell.register_forward_pre_hook(lambda *_: setattr(ops, "on", True))
    cell.register_forward_hook(lambda *_: setattr(ops, "on", False))
    with ops:
        net(torch.randn(2, 3, 8, 8), {k: a.float().softmax(-1) for k, a in _alphas(space).items()})
    return ops.names.count("convolution")


def test_grouped_backend_runs_a_states_out_edges_as_one_convolution_per_stage():
    """A dense normal cell: 12 convolutions per grouped state (two stages of two separable
    ops, one stage of two dilated ones, each a depthwise and a pointwise) for the four states
    with 2-4 out-edges, 12 for the last state's single edge, 2 preprocessings: 62 (plain:
    14 edges x 12 + 2 = 170)."""
    assert _first_cell_convolutions("plain") == 170
    assert _first_cell_convolutions("grouped") == 62


def test_grouped_backend_is_for_darts_cells():
    with pytest.raises(ValueError, match=r"space\.supernet\.backend=grouped"):
        build_supernet(NB201Space(), 10, c=4, n_cells=1, backend="grouped")
