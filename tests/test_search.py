import pytest
import torch

from nas.errors import ConfigError
from nas.io import read_json, read_jsonl
from nas.pipeline import SUPERNET_FILE, run
from nas.search import ALPHAS_FILE, DERIVED_FILE
from nas.spaces import get_space
from nas.supernet import build_supernet
from tests.conftest import bare_trainer
from tests.conftest import search_module as _module


def test_darts_search_network_has_the_papers_parameter_count():
    net = build_supernet(get_space("darts"), num_classes=10, c=16, layers=8)
    n = sum(p.numel() for p in net.parameters())
    assert abs(n - 1.93e6) / 1.93e6 < 0.01  # the DARTS code reports 1.930618 MB


def test_alphas_are_not_supernet_weights(tiny_cfg):
    _, module = _module(tiny_cfg())
    weight_ids = {id(p) for p in module.supernet.parameters()}
    assert all(id(a) not in weight_ids for a in module.strategy.arch_parameters())
    w_opt, a_opt = module.configure_optimizers()[0]
    assert {id(p) for g in w_opt.param_groups for p in g["params"]} == weight_ids
    assert {id(p) for g in a_opt.param_groups for p in g["params"]} == {
        id(a) for a in module.strategy.arch_parameters()
    }


def test_one_search_step_changes_weights_and_alphas(tiny_cfg):
    dm, module = _module(tiny_cfg("trainer.limit_train_batches=1", "trainer.limit_val_batches=1"))
    alphas0 = {k: a.detach().clone() for k, a in module.strategy.alphas.items()}
    weights0 = {n: p.detach().clone() for n, p in module.supernet.named_parameters()}
    trainer = bare_trainer(1, 1)
    trainer.fit(module, datamodule=dm)
    assert all(not torch.equal(alphas0[k], a) for k, a in module.strategy.alphas.items())
    changed = [n for n, p in module.supernet.named_parameters() if not torch.equal(weights0[n], p)]
    assert len(changed) > 0.9 * len(weights0)


def test_search_writes_derived_arch_each_epoch_and_resumes(tiny_cfg, tmp_path):
    result = run(tiny_cfg("search.epochs=1"))
    derived = read_json(tmp_path / DERIVED_FILE)
    space = get_space("darts")
    assert derived["final"] and derived["epoch"] == 0
    assert space.to_str(space.from_json(derived)) == result.arch
    assert (tmp_path / SUPERNET_FILE).exists()
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()

    # Rerun with a longer schedule: the finished stage is not redone...
    mtime = (tmp_path / SUPERNET_FILE).stat().st_mtime_ns
    run(tiny_cfg("search.epochs=1"))
    assert (tmp_path / SUPERNET_FILE).stat().st_mtime_ns == mtime
    # ...and once its output is gone, training continues from last.ckpt at epoch 1.
    (tmp_path / SUPERNET_FILE).unlink()
    result = run(tiny_cfg("search.epochs=2"))
    assert result.derived["epoch"] == 1
    assert [r["epoch"] for r in read_jsonl(tmp_path / ALPHAS_FILE)] == [0, 1]


def test_resume_false_refuses_to_overwrite(tiny_cfg, run_copy):
    run_copy()
    with pytest.raises(ConfigError, match="resume=true"):
        run(tiny_cfg("resume=false"))


def test_bf16_arch_gradient_matches_fp32(tiny_cfg):
    """The architecture gradient of a bf16-autocast step agrees with the fp32 one; the op
    weights handed to the supernet stay fp32 inside autocast."""
    dm, module = _module(tiny_cfg())
    x, y = next(iter(dm.val_dataloader()))  # the arch half

    def alpha_grad(autocast: bool) -> torch.Tensor:
        module.strategy.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            assert all(p.dtype == torch.float32 for p in module.strategy.probabilities().values())
            module.strategy.arch_loss(module.supernet, x, y).backward()
        return torch.cat([a.grad.flatten() for a in module.strategy.alphas.values()])

    g16, g32 = alpha_grad(True), alpha_grad(False)
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.98
    assert 0.9 < g16.norm() / g32.norm() < 1.1


def test_same_seed_same_search(tiny_cfg, finished_runs, tmp_path):
    """Deterministic CPU: the same config and seed give the same alphas and derived arch (the
    session's tiny run and a new one); another seed gives other alphas."""
    results = []
    run(tiny_cfg(f"paths.output_dir={tmp_path / 'b'}"))
    for run_dir in (finished_runs(), tmp_path / "b"):
        results.append((read_json(run_dir / DERIVED_FILE), list(read_jsonl(run_dir / ALPHAS_FILE))))
    assert results[0] == results[1]
    other = tmp_path / "seed1"
    run(tiny_cfg("seed=1", f"paths.output_dir={other}"))
    assert list(read_jsonl(other / ALPHAS_FILE)) != results[0][1]
