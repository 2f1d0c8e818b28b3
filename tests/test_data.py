import hashlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from nas.data import SearchDataModule, build_dataset, register_dataset
from nas.data import registry as data_registry
from nas.errors import ConfigError, DatasetUnavailableError
from tests.conftest import ROOT, SHARED_DATA, compose_cfg, image_tree


def test_digits_is_offline_and_split_in_disjoint_halves():
    cfg = compose_cfg("dataset=digits").dataset
    dm = SearchDataModule(cfg)
    dm.setup()
    assert (dm.num_classes, dm.in_channels) == (10, 1)
    w_idx, a_idx = set(dm.weights_set.indices), set(dm.arch_set.indices)
    assert not w_idx & a_idx
    assert len(w_idx) + len(a_idx) == len(dm.bundle.train) == 1437  # 80% of 1,797
    assert abs(len(w_idx) - len(a_idx)) <= 1
    batch = next(iter(dm.train_dataloader()))
    (x, y), (xa, ya) = batch[0]["train"], batch[0]["arch"]
    assert x.shape == xa.shape == (64, 1, 8, 8) and y.dtype == ya.dtype == torch.long


def test_split_is_reproducible_and_seeded():
    cfg = compose_cfg("dataset=digits").dataset
    a, b = SearchDataModule(cfg), SearchDataModule(cfg)
    a.setup(), b.setup()
    assert a.weights_set.indices == b.weights_set.indices
    c = SearchDataModule(compose_cfg("dataset=digits", "dataset.split_seed=1").dataset)
    c.setup()
    assert c.weights_set.indices != a.weights_set.indices


def test_too_small_half_names_the_keys():
    cfg = compose_cfg("dataset=synthetic", "dataset.n_train=20").dataset
    with pytest.raises(ConfigError, match=r"dataset\.batch_size"):
        SearchDataModule(cfg).setup()


def test_offline_cifar10_error_names_root_and_files(tmp_path):
    cfg = compose_cfg(
        "dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=false"
    ).dataset
    with pytest.raises(DatasetUnavailableError, match=r"dataset.root=.*data_batch_1"):
        build_dataset(cfg)


def test_unknown_dataset_lists_known():
    with pytest.raises(ConfigError, match="digits"):
        build_dataset(compose_cfg("dataset.name=mnist").dataset)


def test_imagefolder_on_prepared_cifar10_jpegs(tmp_path):
    if not (SHARED_DATA / "cifar10_jpeg").exists():
        pytest.skip("offline CIFAR-10 JPEGs not present")
    out = tmp_path / "cifar"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "prepare_cifar10_jpeg.py"),
            "--out",
            str(out),
            "--per-class",
            "8",
        ],
        check=True,
        capture_output=True,
    )
    cfg = compose_cfg(
        "+experiment=cifar10_jpeg", f"dataset.train_dir={out}/train", f"dataset.test_dir={out}/test"
    ).dataset
    bundle = build_dataset(cfg)
    assert len(bundle.train) == len(bundle.test) == 80
    assert bundle.train.classes[0] == "airplane" and bundle.train.classes[-1] == "truck"
    x, y = bundle.test[0]
    assert x.shape == (3, 32, 32) and y == 0


def test_imagefolder_corrupt_image_names_the_file(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / split / cls / "ok.png")
    jpeg = tmp_path / "ok.jpg"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(jpeg)
    broken = {
        tmp_path / "train" / "b" / "zz_garbage.jpg": b"not an image at all",
        tmp_path / "test" / "a" / "zz_truncated.jpg": jpeg.read_bytes()[:200],
    }
    for path, data in broken.items():
        path.write_bytes(data)
    cfg = compose_cfg(
        "dataset=imagefolder",
        f"dataset.train_dir={tmp_path}/train",
        f"dataset.test_dir={tmp_path}/test",
    ).dataset
    bundle = build_dataset(cfg)
    assert bundle.train[0][0].shape == (3, 32, 32)  # good images load
    for ds, path in zip((bundle.train, bundle.test), broken, strict=True):
        i = [p for p, _ in ds.samples].index(str(path))
        with pytest.raises(DatasetUnavailableError, match=rf"{path.name}: unreadable image"):
            ds[i]


def test_imagefolder_missing_dir_names_the_key(tmp_path):
    cfg = compose_cfg("dataset=imagefolder", f"dataset.train_dir={tmp_path}/nope").dataset
    with pytest.raises(DatasetUnavailableError, match=r"dataset\.train_dir"):
        build_dataset(cfg)


def test_train_py_reports_missing_dataset_without_traceback(tmp_path):
    cmd = [
        sys.executable,
        "train.py",
        "dataset=cifar10",
        "dataset.download=false",
        f"dataset.root={tmp_path}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "dataset.root" in proc.stderr and "cifar-10-batches-py" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


# -- the config is the one source of the data settings ----------------------------------------
# 32x32 images whose pixel value is 8 x column in every channel (a left-to-right ramp).
RAMP = np.broadcast_to(np.arange(32, dtype=np.uint8) * 8, (3, 32, 32))


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch):
    """A tiny CIFAR-10 tree under ``tmp_path`` (4 ramp images per batch file), with
    torchvision's checksums set to those of these files."""
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {"data": np.stack([RAMP.reshape(-1)] * 4), "labels": [0, 1, 2, 3]}
    files = {f"data_batch_{i}": batch for i in range(1, 6)}
    files |= {"test_batch": batch, "batches.meta": {"label_names": [str(c) for c in range(10)]}}
    md5 = {}
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    monkeypatch.setattr(CIFAR10, "train_list", [[f, md5[f]] for f in files if "data_batch" in f])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    return tmp_path


def _cifar10_cfg(root, *overrides: str, **extra: object):
    cfg = compose_cfg(
        "dataset=cifar10", f"dataset.root={root}", "dataset.download=false", *overrides
    ).dataset
    with open_dict(cfg):  # keys that nas.config's schema does not declare yet
        cfg.update(extra)
    return cfg


def test_cifar10_normalises_with_dataset_mean_and_std(fake_cifar10):
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 0.125]
    cfg = _cifar10_cfg(
        fake_cifar10, "dataset.augment=false", f"dataset.mean={mean}", f"dataset.std={std}"
    )
    bundle = build_dataset(cfg)
    raw = torch.from_numpy(RAMP.astype(np.float32) / 255)
    expected = (raw - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    for x, _ in (bundle.train[0], bundle.test[0]):
        torch.testing.assert_close(x, expected)


@pytest.mark.parametrize(
    ("name", "mean", "std"),
    [
        ("cifar10", [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
        ("cifar100", [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]),
        ("svhn", [0.4377, 0.4438, 0.4728], [0.1980, 0.2010, 0.1970]),
    ],
)
def test_each_dataset_config_carries_its_own_statistics(name, mean, std):
    cfg = compose_cfg(f"dataset={name}").dataset
    assert (list(cfg.mean), list(cfg.std)) == (mean, std)


def test_image_size_resizes_cifar10_train_crops_and_test_images(fake_cifar10):
    cfg = _cifar10_cfg(
        fake_cifar10,
        "dataset.image_size=16",
        "dataset.augment=true",
        "dataset.mean=[0,0,0]",
        "dataset.std=[1,1,1]",
        crop_padding=0,
    )
    bundle = build_dataset(cfg)
    assert bundle.image_size == 16
    (train, _), (test, _) = bundle.train[0], bundle.test[0]
    assert train.shape == test.shape == (3, 16, 16)
    # the whole ramp, shrunk: a resize, not a 16x16 crop of the middle (0.25 .. 0.72)
    assert test[:, :, 0].max() < 0.1 and test[:, :, -1].min() > 0.9
    # unpadded random crop of the resized image: the resized image itself, maybe flipped
    torch.testing.assert_close(train, test if train[0, 0, 0] < 0.5 else test.flip(-1))


def test_crop_padding_pads_the_random_crops(fake_cifar10):
    cfg = _cifar10_cfg(fake_cifar10, "dataset.augment=true", crop_padding=32)
    mean, std = torch.tensor(cfg.mean), torch.tensor(cfg.std)
    zero = (-mean / std)[:, None, None]  # a padded (black) pixel after normalisation
    train = build_dataset(cfg).train
    torch.manual_seed(0)
    crops = torch.stack([train[0][0] for _ in range(8)])
    assert crops.shape == (8, 3, 32, 32)
    # padding 4 pads at most 1 - (28/32)^2 = 0.23 of a crop (+ the ramp's black column, 0.03)
    assert torch.isclose(crops, zero).all(dim=1).float().mean() > 0.3


def test_digits_image_size_and_test_fraction():
    cfg = compose_cfg("dataset=digits", "dataset.image_size=16").dataset
    with open_dict(cfg):
        cfg.test_fraction = 0.5
    bundle = build_dataset(cfg)
    assert bundle.image_size == 16 and bundle.train[0][0].shape == (1, 16, 16)
    assert len(bundle.test) == 899 and len(bundle.train) == 898  # half of 1,797
    x = torch.stack([bundle.train[i][0] for i in range(len(bundle.train))])
    assert x.mean().abs() < 1e-4 and (x.std() - 1).abs() < 1e-3  # standardised after resizing


# -- downloads: prepare_data only, never setup -----------------------------------------------
@pytest.fixture
def recorded_cifar10(monkeypatch):
    """cifar10 replaced by a synthetic builder recording each call's ``download``."""
    calls = []
    synthetic = data_registry._DATASETS["synthetic"].builder

    def fake(cfg, download):
        calls.append(download)
        return synthetic(compose_cfg("dataset=synthetic").dataset, download)

    monkeypatch.setitem(data_registry._DATASETS, "cifar10", data_registry._DATASETS["cifar10"])
    register_dataset("cifar10", num_classes=10, in_channels=3, downloads=True)(fake)
    return calls


def test_prepare_data_downloads_and_setup_never_does(recorded_cifar10):
    dm = SearchDataModule(compose_cfg("dataset=cifar10", "dataset.batch_size=16").dataset)
    assert (dm.num_classes, dm.in_channels) == (10, 3) and recorded_cifar10 == []
    dm.prepare_data()
    assert recorded_cifar10 == [True]
    dm.setup("fit")
    assert recorded_cifar10 == [True, False]


def test_prepare_data_obeys_download_false(recorded_cifar10):
    cfg = compose_cfg("dataset=cifar10", "dataset.download=false", "dataset.batch_size=16")
    dm = SearchDataModule(cfg.dataset)
    dm.prepare_data()
    dm.setup()
    assert recorded_cifar10 == [False]


def test_setup_reads_absent_files_without_fetching_them(tmp_path):
    cfg = compose_cfg("dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=true")
    dm = SearchDataModule(cfg.dataset)
    assert (dm.num_classes, dm.in_channels) == (10, 3)  # needs no files
    with pytest.raises(DatasetUnavailableError, match="prepare_data"):
        dm.setup()
    assert not any(tmp_path.iterdir())


def test_scoring_batches_are_the_same_unaugmented_pixels_in_every_process(tmp_path):
    """The one-shot evaluator's batches come from the training split without random crops or
    flips: processes with other random states (a run and its resume) get the same pixels, the
    test transform's, while the augmented training view differs (the positive control)."""
    image_tree(tmp_path)
    cfg = compose_cfg(
        "dataset=imagefolder",
        f"dataset.train_dir={tmp_path}/train",
        f"dataset.test_dir={tmp_path}/test",
        "dataset.image_size=8",
        "dataset.batch_size=4",
        "dataset.augment=true",
    ).dataset
    fixed, augmented = [], []
    for state in (1, 2):
        torch.manual_seed(state)
        dm = SearchDataModule(cfg, seed=0)
        dm.setup()
        fixed.append(dm.fixed_batches("weights", 2, 8, seed=0) + dm.fixed_batches("arch", 1, 8))
        augmented.append(torch.stack([dm.weights_set[i][0] for i in range(8)]))
    for (xa, ya), (xb, yb) in zip(*fixed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(*augmented)
    with open_dict(cfg):
        cfg.augment = False
    plain = build_dataset(cfg).train
    x_arch = fixed[0][-1][0]  # the arch half's first batch, unshuffled
    expected = torch.stack([plain[i][0] for i in dm.arch_set.indices[:8]])
    assert torch.equal(x_arch, expected)
