"""Search strategies: each one's defining property, and one real search epoch of each."""

import copy
import random

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.func import functional_call

from nas.errors import ConfigError
from nas.files import SUPERNET_FILE
from nas.io import read_json
from nas.pipeline import run
from nas.search import DERIVED_FILE, SupernetModule, available_strategies, build_strategy
from nas.search.checkpoints import read_checkpoint
from nas.search.darts2 import SecondOrderDartsStrategy
from nas.search.drnas import DrnasStrategy
from nas.search.gdas import GdasStrategy
from nas.search.module import GRAPH_SAFE
from nas.search.pcdarts import PcDartsStrategy
from nas.search.single_path import SinglePathStrategy, op_parameter_counts
from nas.search.strategies import DartsStrategy, beta_decay
from nas.spaces import get_space, searchable_cells
from nas.supernet import MixedOp, build_supernet
from tests.conftest import bare_trainer, compose_cfg, search_module

STRATEGIES = ("darts", "darts2", "gdas", "pcdarts", "fairdarts", "drnas", "betadarts", "spos")


def tiny_nb201(**options):
    space = get_space("nb201")
    net = build_supernet(space, num_classes=3, in_channels=3, c=4, n_cells=1, **options)
    return space, net


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_every_strategy_is_registered():
    assert set(STRATEGIES) <= set(available_strategies())


@pytest.mark.parametrize("name", STRATEGIES)
def test_cuda_graph_names_exactly_the_graph_safe_strategies(name):
    cfg = compose_cfg(f"search={name}", "search.cuda_graph=true")
    strategy = build_strategy(get_space("nb201"), cfg.search)
    assert strategy.graph_safe == (name in GRAPH_SAFE)
    if strategy.graph_safe:  # every op runs, known without reading the weights
        active = strategy.active_ops()
        assert {k: len(v) for k, v in active.items()} == {"cell": 6}
        assert all(all(row) and len(row) == 5 for row in active["cell"])
        return
    assert strategy.active_ops() is None
    with pytest.raises(ConfigError, match=rf"search.cuda_graph=true cannot capture.*{name}"):
        SupernetModule(
            space={"name": "nb201", "supernet": {"c": 4, "n_cells": 1}},
            search={**cfg.search, "seed": 0},
            num_classes=3,
            in_channels=3,
        )


def test_cuda_graph_refuses_a_cpu_trainer_and_a_compiled_supernet():
    with pytest.raises(ConfigError, match=r"search.cuda_graph=true needs .*trainer=gpu"):
        search_module(compose_cfg("dataset=synthetic", "scale=tiny", "search.cuda_graph=true"))
    cfg = compose_cfg(
        "dataset=synthetic", "scale=tiny", "search.cuda_graph=true", "trainer=gpu",
        "space.supernet.compile=cudagraphs",
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"set space.supernet.compile=false"):
        search_module(cfg)


# -- second-order DARTS -------------------------------------------------------------------


def exact_hypergradient(strategy, net, train, arch, xi, wd):
    """d/d alpha L_val(w - xi * (grad_w L_train(w, alpha) + wd * w), alpha) by autograd."""
    params = dict(net.named_parameters())
    weights = strategy.op_weights()
    l_train = F.cross_entropy(functional_call(net, params, (train[0], weights)), train[1])
    grads = torch.autograd.grad(l_train, list(params.values()), create_graph=True)
    virtual = {n: p - xi * (g + wd * p) for (n, p), g in zip(params.items(), grads, strict=True)}
    l_val = F.cross_entropy(
        functional_call(net, virtual, (arch[0], strategy.op_weights())), arch[1]
    )
    return torch.autograd.grad(l_val, strategy.arch_parameters())


def smooth(net):
    """``net`` with every ReLU swapped for a Softplus. A finite difference agrees with the
    derivative to O(eps^2) on a smooth loss only: ReLU kinks within the weight perturbation
    (norm 0.01) break any finite difference, whatever the implementation."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(module, name, torch.nn.Softplus(beta=4))
    return net


def test_darts2_architecture_gradient_is_the_exact_hypergradient():
    torch.manual_seed(0)
    space, net = tiny_nb201(backend="plain", channels_last=False)
    smooth(net).double()
    strategy = SecondOrderDartsStrategy(space, alpha_init_std=0.5).double()
    train, arch = [(x.double(), y) for x, y in (batch(seed=1), batch(seed=2))]
    xi, wd = 0.1, 3e-4
    opt = torch.optim.SGD(net.parameters(), lr=xi, momentum=0.9, weight_decay=wd)

    exact = exact_hypergradient(strategy, net, train, arch, xi, wd)
    strategy.zero_grad()
    strategy.arch_backward(net, train, arch, lambda loss: loss.backward(), opt)
    for a, e in zip(strategy.arch_parameters(), exact, strict=True):
        assert (a.grad - e).norm() / e.norm() < 1e-2
    # the second-order term matters: the first-order gradient is measurably different
    first = torch.autograd.grad(strategy.arch_loss(net, *arch), strategy.arch_parameters())
    assert (first[0] - exact[0]).norm() / exact[0].norm() > 1e-2


def test_darts2_leaves_weights_batchnorm_and_optimiser_untouched():
    torch.manual_seed(0)
    space, net = tiny_nb201()
    strategy = SecondOrderDartsStrategy(space)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = batch()
    F.cross_entropy(net(x, strategy.train_paths()[0]), y).backward()
    opt.step()  # a momentum buffer to read
    state = {k: v.clone() for k, v in net.state_dict().items()}
    buffers = {id(p): s["momentum_buffer"].clone() for p, s in opt.state.items()}
    strategy.arch_backward(net, batch(seed=1), batch(seed=2), lambda loss: loss.backward(), opt)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert all(torch.equal(buffers[id(p)], s["momentum_buffer"]) for p, s in opt.state.items())
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in strategy.arch_parameters())


# -- GDAS ---------------------------------------------------------------------------------


def count_op_runs(monkeypatch):
    calls = []
    run_op = MixedOp.run_op

    def counting(self, k, x, scale):
        calls.append(k)
        return run_op(self, k, x, scale)

    monkeypatch.setattr(MixedOp, "run_op", counting)
    return calls


def test_gdas_runs_only_the_sampled_ops_yet_every_alpha_gets_a_gradient(monkeypatch):
    torch.manual_seed(0)
    space, net = tiny_nb201()
    strategy = GdasStrategy(space)
    weights = strategy.op_weights()
    hard = weights["cell"].detach()
    assert torch.equal(hard.sum(-1), torch.ones(6)) and set(hard.unique().tolist()) == {0.0, 1.0}
    calls = count_op_runs(monkeypatch)
    x, y = batch()
    F.cross_entropy(net(x, weights), y).backward()
    n_cells = len(list(searchable_cells(net.net)))
    computed = int((hard[:, space.op_index("none")] == 0).sum())
    assert len(calls) == n_cells * computed  # one op per edge, none of them 'none'
    assert (strategy.alphas["cell"].grad != 0).all()


def test_gdas_alpha_gradient_matches_the_dense_straight_through_computation(monkeypatch):
    torch.manual_seed(0)
    space, net = tiny_nb201()
    strategy = GdasStrategy(space)
    x, y = batch()
    weights = strategy.op_weights()
    (ours,) = torch.autograd.grad(
        F.cross_entropy(net(x, weights), y), strategy.arch_parameters(), retain_graph=True
    )

    def dense(self, x, w, active):  # every op's term written out, as the reference code does
        out = 0
        for k, op in enumerate(self.ops):
            out = out + (w[k] * op(x) if w[k].item() != 0 else w[k])
        return out

    monkeypatch.setattr(MixedOp, "forward", dense)
    (reference,) = torch.autograd.grad(
        F.cross_entropy(net(x, weights), y), strategy.arch_parameters()
    )
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-6)


def test_gdas_temperature_falls_linearly_from_tau_max_to_tau_min():
    strategy = GdasStrategy(get_space("nb201"), tau_max=10.0, tau_min=0.1)
    taus = []
    for epoch in range(5):
        strategy.set_epoch(epoch, 5)
        taus.append(strategy.tau)
    assert taus[0] == 10.0 and taus[-1] == pytest.approx(0.1)
    assert taus == pytest.approx([10.0 - 9.9 * e / 4 for e in range(5)])


# -- PC-DARTS, FairDARTS, DrNAS, β-DARTS --------------------------------------------------


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_partial_channel_supernet_single_path_is_the_exported_subnet(space_name):
    from nas.export.subnet import build_subnet

    torch.manual_seed(0)
    space = get_space(space_name)
    size = {"nb201": {"c": 4, "n_cells": 1}, "darts": {"c": 4, "layers": 3}}[space_name]
    options = {**size, "partial_channels": 2}
    net = build_supernet(space, 3, 3, **options)
    net.train()
    x, _ = batch(4)
    net(x, space.one_hot(space.sample(random.Random(0))))  # BN statistics
    net.eval()
    arch = space.sample(random.Random(1))
    sub = build_subnet(space, arch, 3, 3, options, net.state_dict()).eval()
    torch.testing.assert_close(sub(x), net(x, space.one_hot(arch)), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="partial_channels"):
        build_supernet(space, 3, 3, **{**size, "partial_channels": 3})


def test_pcdarts_normalises_edges_per_node_and_derives_from_the_product():
    space = get_space("darts")
    strategy = PcDartsStrategy(space, alpha_init_std=1.0)
    weights = strategy.op_weights()
    for kind, w in weights.items():
        mass = w.sum(-1)  # each edge's softmax(alpha) sums to 1: its mass is its edge weight
        for node in range(4):
            ids = [e for e, n in enumerate(space.edge_nodes[kind]) if n == node]
            assert mass[ids].sum().item() == pytest.approx(1.0)

    # the edge weights decide which inputs a node keeps: node 3 (five inputs, two kept)
    # keeps its weakest input once that edge's beta dominates the node's edge softmax
    def kept(arch):  # node 3's inputs: its genes are the last two
        return {j for _, j in arch.normal[6:8]}

    node3 = [e for e, n in enumerate(space.edge_nodes["normal"]) if n == 3]
    best = strategy.derivation_weights()["normal"][node3, 1:].max(-1).values  # not 'none'
    weakest = int(best.argmin())
    assert weakest not in kept(space.derive(strategy.derivation_weights()))
    with torch.no_grad():
        strategy.edge_betas["normal"][node3[weakest]] = 10.0
    assert weakest in kept(space.derive(strategy.derivation_weights()))


def test_fairdarts_weights_are_independent_sigmoids_pushed_to_zero_or_one():
    strategy = build_strategy(get_space("nb201"), compose_cfg("search=fairdarts").search)
    with torch.no_grad():
        strategy.alphas["cell"].fill_(0.0)
    assert torch.equal(strategy.op_weights()["cell"], torch.full((6, 5), 0.5))
    at_half = strategy.regularizer()
    with torch.no_grad():
        strategy.alphas["cell"].fill_(5.0)
    assert strategy.regularizer() < at_half  # the zero-one loss favours saturated weights


def test_drnas_draws_dirichlet_weights_and_its_kl_vanishes_at_the_uniform_prior():
    strategy = DrnasStrategy(get_space("nb201"), kl_weight=1.0)
    w = strategy.op_weights()["cell"]
    assert torch.allclose(w.sum(-1), torch.ones(6)) and (w > 0).all()
    assert not torch.equal(w, strategy.op_weights()["cell"])  # a fresh draw each time
    with torch.no_grad():
        strategy.alphas["cell"].zero_()  # concentration elu(0) + 1 = 1: the prior itself
    assert strategy.regularizer().item() == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():
        strategy.alphas["cell"].normal_(0, 1)
    assert strategy.regularizer().item() > 0.01


def test_beta_decay_gradient_is_the_softmax_of_the_alphas():
    alphas = {"cell": torch.randn(6, 5, requires_grad=True)}
    beta_decay(alphas).backward()
    torch.testing.assert_close(alphas["cell"].grad, F.softmax(alphas["cell"], -1) / 6)
    strategy = DartsStrategy(get_space("nb201"), beta_weight=2.0)
    strategy.set_epoch(0, 5)
    assert strategy.regularizer() == 0  # the weight ramps up from zero
    strategy.set_epoch(4, 5)
    assert strategy.regularizer().item() == pytest.approx(2.0 * beta_decay(strategy.alphas).item())
    with pytest.raises(ConfigError, match="beta_weight"):
        build_strategy(
            get_space("nb201"), compose_cfg("search=betadarts", "search.beta_weight=0").search
        )


def test_arch_warmup_keeps_the_alphas_frozen_then_trains_them(tiny_cfg):
    dm, module = search_module(tiny_cfg("search.epochs=2", "search.arch_warmup_epochs=1"))

    def alphas():
        return {k: a.detach().clone() for k, a in module.strategy.alphas.items()}

    seen = [alphas()]  # at the start, then at the end of each epoch

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append(alphas())

    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=0,
        callbacks=[Record()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    start, warm, after = seen
    assert all(torch.equal(start[k], warm[k]) for k in start)  # the warm-up epoch: frozen
    assert all(not torch.equal(warm[k], after[k]) for k in warm)  # the next epoch: trained


# -- single-path samplers ------------------------------------------------------------------


def test_fair_sampler_step_trains_every_op_of_every_edge_exactly_once():
    space = get_space("nb201")
    strategy = SinglePathStrategy(space, "fair", seed=3)
    n = len(space.op_names)
    for _ in range(2):
        paths = strategy.train_paths()
        assert len(paths) == n
        picks = torch.stack([p["cell"] for p in paths])  # [paths, edges, ops]
        assert torch.equal(picks.sum(0), torch.ones(6, n))
        for p in paths:  # each path is one arch's one-hot op weights
            assert torch.equal(space.one_hot(space.derive(p))["cell"], p["cell"])


def test_fair_sampler_needs_independent_edges():
    with pytest.raises(ConfigError, match="uniform"):
        SinglePathStrategy(get_space("darts"), "fair")


def test_distinct_sampler_draws_representatives_of_every_class_alike():
    space = get_space("nb201")
    strategy = SinglePathStrategy(space, "distinct", seed=1)
    reps = set(space.distinct_archs())
    draws = [space.derive(strategy.train_paths()[0]) for _ in range(3000)]
    assert all(a in reps for a in draws)
    # uniform over the 5,425 classes: the zero-output class (341 of the 15,625 cells, 2 %
    # of uniform draws) comes up about 3000 / 5425 times
    zero = space.canonical(("none",) * 6)
    assert sum(a == zero for a in draws) < 10
    assert len(set(draws)) > 2000


def test_distinct_sampler_needs_a_space_that_lists_its_classes():
    with pytest.raises(ConfigError, match="uniform"):
        SinglePathStrategy(get_space("darts"), "distinct")


@pytest.mark.parametrize("sampler", ["fair", "sandwich"])
def test_multi_path_step_sums_gradients_into_one_update(sampler, tiny_cfg, monkeypatch):
    """One weight step of a multi-path sampler: a single optimizer step whose gradient is the
    sum of the paths' gradients, each taken at the weights before the step."""
    from nas.supernet import Supernet

    dm, module = search_module(tiny_cfg("space=nb201", "search=spos", f"search.sampler={sampler}"))
    reference = copy.deepcopy(module.supernet)  # the weights the step starts from
    batches, paths, steps = [], [], []
    forward, training_step = Supernet.forward, SupernetModule.training_step
    before_step = SupernetModule.on_before_optimizer_step

    def recording_step(self, batch, batch_idx):
        batches.append(batch["train"])
        return training_step(self, batch, batch_idx)

    def recording_forward(self, x, weights, active=None):
        if self.training:
            paths.append(weights)
        return forward(self, x, weights, active)

    def recording_before_step(self, optimizer):  # the gradient the update is made of
        params = self.supernet.parameters()
        steps.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params])
        return before_step(self, optimizer)

    monkeypatch.setattr(SupernetModule, "training_step", recording_step)
    monkeypatch.setattr(Supernet, "forward", recording_forward)
    monkeypatch.setattr(SupernetModule, "on_before_optimizer_step", recording_before_step)
    bare_trainer(1, 0).fit(module, datamodule=dm)
    monkeypatch.undo()

    assert len(paths) == {"fair": 5, "sandwich": 4}[sampler] and len(steps) == 1
    ((x, y),) = batches
    params = list(reference.parameters())
    per_path = [
        torch.autograd.grad(F.cross_entropy(reference(x, w), y), params, allow_unused=True)
        for w in paths
    ]
    (step,) = steps
    for i, (grad, p) in enumerate(zip(step, params, strict=True)):
        parts = [torch.zeros_like(p) if g[i] is None else g[i] for g in per_path]
        torch.testing.assert_close(grad, torch.stack(parts).sum(0), rtol=1e-4, atol=1e-6)


def test_sandwich_trains_the_largest_the_smallest_and_random_paths():
    space, net = tiny_nb201()
    strategy = SinglePathStrategy(space, "sandwich", supernet=net, sandwich_random=3)
    paths = strategy.train_paths()
    assert len(paths) == 5
    archs = [space.derive(p) for p in paths]
    assert archs[0] == ("nor_conv_3x3",) * 6
    assert archs[1] == ("skip_connect",) * 6  # fewest parameters; 'none' is never a path

    darts = get_space("darts")
    dnet = build_supernet(darts, 3, 3, c=4, layers=3)
    counts = op_parameter_counts(dnet)

    def params(arch):
        w = darts.one_hot(arch)
        return sum(float((counts[k] * w[k]).sum()) for k in counts)

    largest, smallest, *rest = SinglePathStrategy(darts, "sandwich", supernet=dnet).train_paths()
    sizes = [params(darts.derive(p)) for p in (largest, smallest, *rest)]
    rng = random.Random(0)
    others = [params(darts.sample(rng)) for _ in range(50)]
    assert sizes[0] >= max(others) and sizes[1] <= min(others)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SinglePathStrategy(get_space("nb201"), "fair", seed=torch.randint(99, ()).item()),
        lambda: SinglePathStrategy(
            get_space("darts"), "uniform", seed=torch.randint(99, ()).item()
        ),
        lambda: GdasStrategy(get_space("nb201")),
        lambda: DrnasStrategy(get_space("nb201")),
    ],
)
def test_draws_resume_from_the_checkpointed_state(make):
    torch.manual_seed(0)
    a = make()
    for _ in range(3):
        a.train_paths()
    torch.manual_seed(1)
    b = make()
    b.load_state_dict(a.state_dict())
    for _ in range(4):
        for wa, wb in zip(a.train_paths(), b.train_paths(), strict=True):
            assert all(torch.equal(wa[k], wb[k]) for k in wa)


# -- one real search epoch of each ---------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [[f"search={s}"] for s in STRATEGIES]
    + [
        ["search=spos", "search.sampler=sandwich"],
        ["search=spos", "search.sampler=fair", "space=nb201"],
        ["search=pcdarts", "search.arch_warmup_epochs=0"],
    ],
    ids=lambda o: "-".join(v.split("=")[1] for v in o),
)
def test_one_digits_epoch_of_each_strategy_writes_its_derived_arch(overrides, tmp_path):
    cfg = compose_cfg(
        "+experiment=digits",
        *overrides,
        "search.epochs=1",
        "stages=[search,derive]",
        "logger=none",
        "callbacks=none",  # no checkpoints or heatmaps: this test reads derived.json
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
        f"paths.output_dir={tmp_path}",
    )
    result = run(cfg)
    space = get_space(cfg.space.name)
    # the arch the searched strategy points at: derived from its architecture parameters as
    # the checkpoint holds them; single paths (spos) have none and derive no arch
    expected = None
    if cfg.search.strategy != "spos":
        strategy = build_strategy(space, cfg.search)
        state = read_checkpoint(tmp_path / SUPERNET_FILE)["state_dict"]
        prefix = "strategy."
        strategy.load_state_dict(
            {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        )
        expected = space.to_str(space.derive(strategy.derivation_weights()))
    derived = read_json(tmp_path / DERIVED_FILE)
    assert derived == {"space": space.name, "arch": expected, "epoch": 0, "final": True}
    assert result.derived == derived


# -- wiring diagnostics --------------------------------------------------------------------


def test_cell_shape_measures_depth_width_and_input_share():
    from nas.search.diagnostics import cell_shape

    space = get_space("nb201")
    chain = ("skip_connect", "none", "skip_connect", "none", "none", "skip_connect")
    nodes, edges = space.cell_graphs(chain)["cell"]
    assert cell_shape(nodes, edges, space.cell_inputs) == {
        "input_share": pytest.approx(1 / 3),
        "depth": 3.0,
        "width": 1.0,
    }
    nodes, edges = space.cell_graphs(("nor_conv_3x3",) * 6)["cell"]
    assert cell_shape(nodes, edges, 1) == {"input_share": 0.5, "depth": 3.0, "width": 2.0}
    shallow = ("none", "none", "none", "skip_connect", "none", "none")  # input straight to output
    nodes, edges = space.cell_graphs(shallow)["cell"]
    assert cell_shape(nodes, edges, 1) == {"input_share": 1.0, "depth": 1.0, "width": 0.0}


def test_wiring_stats_of_uniform_and_peaked_probabilities():
    import math

    from nas.search.diagnostics import wiring_stats

    space = get_space("darts")
    uniform = {k: torch.full((14, 8), 1 / 8) for k in ("normal", "reduce")}
    arch = space.derive(uniform)
    stats = wiring_stats(space, uniform, arch)["normal"]
    assert stats["mean_entropy"] == pytest.approx(math.log(8))
    assert stats["margin"] == 0 and stats["none_mass"] == pytest.approx(1 / 8)
    peaked = {k: torch.eye(8)[[3] * 14] for k in ("normal", "reduce")}  # all skip_connect
    stats = wiring_stats(space, peaked, space.derive(peaked))["normal"]
    assert stats["skip_connect_mass"] == 1 and stats["margin"] == 1 and stats["skips"] == 8


def test_search_writes_wiring_diagnostics_and_warns_on_skip_collapse(
    tiny_cfg, tmp_path, monkeypatch
):
    from nas.io import read_jsonl
    from nas.search import diagnostics

    monkeypatch.setattr(diagnostics, "SKIP_WARNING", 0)  # any derived cell counts as collapse
    with pytest.warns(UserWarning, match="skip connections"):
        run(tiny_cfg("search.epochs=2", "callbacks.wiring_diagnostics.pictures=true"))
    records = list(read_jsonl(tmp_path / "wiring.jsonl"))
    assert [r["epoch"] for r in records] == [0, 1]
    assert set(records[0]["cells"]) == {"normal", "reduce"}
    assert len(records[0]["cells"]["normal"]["entropy"]) == 14
    for epoch in (0, 1):
        assert (tmp_path / "wiring" / f"epoch_{epoch:03d}" / "op_weights_normal.png").stat().st_size


def test_wiring_pictures_are_drawn_in_the_validated_epochs_and_the_last(tiny_cfg, tmp_path):
    from nas.io import read_jsonl

    run(
        tiny_cfg(
            "search.epochs=3",
            "trainer.check_val_every_n_epoch=2",
            "callbacks.wiring_diagnostics.pictures=true",
        )
    )
    assert [r["epoch"] for r in read_jsonl(tmp_path / "wiring.jsonl")] == [0, 1, 2]
    drawn = sorted(p.name for p in (tmp_path / "wiring").iterdir())
    assert drawn == ["epoch_001", "epoch_002"]  # epoch 1 validates, epoch 2 is the last
