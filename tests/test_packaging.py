"""pyproject.toml states what the code needs: every import of ``nas`` is a declared core
dependency, the floors admit no release lacking an API we call, and optional features stay
optional."""

import ast
import sys
import tomllib

from packaging.requirements import Requirement

from tests.conftest import ROOT

# import name -> distribution name, where they differ
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "pytorch_lightning": "pytorch-lightning",
    "hydra": "hydra-core",
    "PIL": "pillow",
}
OPTIONAL = {"wandb", "matplotlib", "onnx", "onnxruntime", "PIL", "nats_bench"}


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _requirements(items: list[str]) -> dict[str, Requirement]:
    return {(r := Requirement(s)).name: r for s in items}


def _imports(nodes) -> set[str]:
    """Top-level names imported by the import statements among ``nodes``."""
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _top_level_imports(path) -> set[str]:
    """Everything a file imports, anywhere in it."""
    return _imports(ast.walk(ast.parse(path.read_text())))


def _module_level_imports(path) -> set[str]:
    """What importing the file executes: imports outside any function."""
    return _imports(ast.parse(path.read_text()).body)


def test_every_import_of_nas_is_declared():
    stdlib = set(sys.stdlib_module_names) | {"__future__", "nas"}
    used = set().union(*(_top_level_imports(p) for p in (ROOT / "nas").rglob("*.py")))
    core = _requirements(_project()["dependencies"])
    missing = {DISTRIBUTIONS.get(m, m) for m in used - stdlib - OPTIONAL} - set(core)
    assert not missing, f"imported by nas/ but not in [project.dependencies]: {missing}"


def test_floors_exclude_releases_without_the_apis_we_call():
    core = _requirements(_project()["dependencies"])
    # Trainer.fit(..., weights_only=True) appeared in pytorch-lightning 2.6
    assert "2.5.9" not in core["pytorch-lightning"].specifier
    assert "2.6.0" in core["pytorch-lightning"].specifier
    assert "2.3.1" not in core["torch"].specifier  # torch.amp.GradScaler("cpu")


def test_optional_features_are_extras_imported_where_used():
    project = _project()
    core = _requirements(project["dependencies"])
    assert not {"wandb", "matplotlib", "onnx"} & set(core)
    assert {"wandb", "plots"} <= set(project["optional-dependencies"])
    eager = {
        str(p.relative_to(ROOT)): _module_level_imports(p) & OPTIONAL
        for p in (ROOT / "nas").rglob("*.py")
    }
    assert not {k: v for k, v in eager.items() if v}, "optional modules imported at import time"


def test_every_checkpoint_load_is_weights_only():
    """Nothing of the user's is unpickled: every ``torch.load`` / ``load_from_checkpoint`` /
    ``trainer.fit(ckpt_path=...)`` call in the code passes ``weights_only=True``."""
    loaders = {"load", "load_from_checkpoint", "fit"}
    offenders, checked = [], 0
    for path in [
        *(ROOT / "nas").rglob("*.py"),
        *(ROOT / "scripts").glob("*.py"),
        ROOT / "train.py",
    ]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in loaders:
                continue
            if node.func.attr == "load" and getattr(node.func.value, "id", None) != "torch":
                continue
            if node.func.attr == "fit" and not any(k.arg == "ckpt_path" for k in node.keywords):
                continue
            checked += 1
            flag = [k for k in node.keywords if k.arg == "weights_only"]
            if not flag or not (
                isinstance(flag[0].value, ast.Constant) and flag[0].value.value is True
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert checked >= 5  # the loads of subnet.pt, predictor.pt, checkpoints and resumed fits
    assert not offenders, f"loads without weights_only=True: {offenders}"


def test_every_script_imports():
    """The scripts import each other's helpers: a helper renamed in one must not break another
    (benchmarks are not run by the tests, so this is where such a break shows)."""
    import subprocess

    names = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))
    code = f"import importlib, sys; sys.path.insert(0, 'scripts'); [importlib.import_module(n) for n in {names}]"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
