"""``dataset.on_device``: batches made in the device's memory, shuffled and augmented there
as the host transforms do, resumable mid-epoch."""

import pytest
import torch

from nas.data.on_device import DeviceLoader, crop_and_flip


def test_crops_and_flips_are_those_of_a_padded_border():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 8, 8, generator=g)
    top, left = torch.tensor([0, 8, 3, 4, 1]), torch.tensor([8, 0, 4, 2, 7])
    flip = torch.tensor([False, True, True, False, True])
    fill = (-1.0, 0.5, 2.0)
    out = crop_and_flip(x, top, left, flip, 4, fill)
    for b in range(5):
        padded = torch.tensor(fill).view(3, 1, 1).repeat(1, 16, 16)
        padded[:, 4:12, 4:12] = x[b]
        want = padded[:, top[b] : top[b] + 8, left[b] : left[b] + 8]
        torch.testing.assert_close(out[b], want.flip(2) if flip[b] else want, rtol=0, atol=0)
    assert out.is_contiguous(memory_format=torch.channels_last)


def _loader(n=50, batch=8, **kw):
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 4, 4).clone()
    return DeviceLoader(images, torch.arange(n), batch, **kw)


def test_an_epoch_shuffles_every_image_at_most_once_and_depends_on_seed_and_epoch_alone():
    loader = _loader(shuffle=True, seed=3)
    epoch0 = torch.cat([y for _, y in loader])
    assert len(loader) == 6 and len(epoch0) == 48 and len(set(epoch0.tolist())) == 48
    epoch1 = torch.cat([y for _, y in loader])  # the loader moves on to the next epoch
    assert not torch.equal(epoch0, epoch1)
    again = _loader(shuffle=True, seed=3)
    again.load_state_dict({"epoch": 1, "next_batch": 0})
    assert torch.equal(torch.cat([y for _, y in again]), epoch1)
    for x, y in _loader(shuffle=True, seed=3):  # images travel with their labels
        assert torch.equal(x[:, 0, 0, 0], y.float())
    fixed = torch.cat([y for _, y in _loader(shuffle=False)])
    assert torch.equal(fixed, torch.arange(50))  # evaluation: every image, in order


def test_augmented_batches_keep_the_centre_pixels_of_their_own_image():
    loader = _loader(shuffle=True, padding=1, fill=(-1.0,))
    for x, y in loader:
        inner = x[:, 0, 1:3, 1:3]  # a crop moved by at most 1 pixel keeps these
        assert torch.equal(inner, y.float().view(-1, 1, 1).expand_as(inner))


def test_a_restored_loader_continues_with_the_next_batch():
    whole = _loader(shuffle=True, seed=1, padding=1, fill=(0.0,))
    epochs = [list(whole) for _ in range(3)]
    first = _loader(shuffle=True, seed=1, padding=1, fill=(0.0,))
    list(first)
    it = iter(first)  # epoch 1, stopped after two batches
    next(it), next(it)
    resumed = _loader(shuffle=True, seed=1, padding=1, fill=(0.0,))
    resumed.load_state_dict(first.state_dict())
    rest, following = list(resumed), list(resumed)
    assert len(rest) == len(epochs[1]) - 2
    for (x, y), (xw, yw) in zip(rest + following, epochs[1][2:] + epochs[2], strict=True):
        assert torch.equal(x, xw) and torch.equal(y, yw)
    done = _loader(shuffle=True, seed=1)  # a state saved at an epoch's end: the next one
    done.load_state_dict({"epoch": 0, "next_batch": len(done)})
    assert torch.equal(torch.cat([y for _, y in done]), torch.cat([y for _, y in epochs[1]]))


@pytest.mark.parametrize("augment", [False, True])
def test_an_on_device_search_trains_on_the_same_split(tiny_cfg, augment):
    from nas.data import SearchDataModule
    from nas.pipeline import run

    cfg = tiny_cfg("dataset.on_device=true", f"dataset.augment={augment}")
    dm = SearchDataModule(cfg.dataset, seed=cfg.seed)
    dm.setup()
    host = torch.stack([x for x, _ in dm.fixed_sets["weights"]])
    seen = torch.cat([batch["train"][0] for batch, *_ in dm.train_dataloader()])
    assert len(seen) == (len(host) // cfg.dataset.batch_size) * cfg.dataset.batch_size
    if not augment:  # the unaugmented images of the weights half, reordered
        key = lambda t: sorted(map(tuple, t.flatten(1).tolist()))  # noqa: E731
        assert set(key(seen)) <= set(key(host))
    result = run(cfg)
    assert result.derived is not None
