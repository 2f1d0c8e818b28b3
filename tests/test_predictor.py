import random
import zlib

import pytest
import torch
from scipy.stats import kendalltau

from nas.predictor import (
    AbsolutePredictor,
    ArchEncoder,
    DeltaPredictor,
    TrainConfig,
    changed_rows,
    weighted_pairs,
)
from nas.predictor.models import Antisymmetric, EnsembleMLP
from nas.spaces import NB201_OPS, get_space

SPACE = get_space("nb201")
# an additive toy score: each (edge, op) contributes a fixed weight
WEIGHTS = torch.tensor([[0.0, 1.0, 2.0, 3.0, 1.5]]).repeat(6, 1) * torch.arange(1, 7)[:, None]


def toy_score(arch) -> float:
    return float((SPACE.one_hot(arch)["cell"] * WEIGHTS).sum())


def sample(n: int, seed: int) -> list:
    rng, out = random.Random(seed), {}
    while len(out) < n:
        out[SPACE.sample(rng)] = None
    return list(out)


def test_encoding_and_delta() -> None:
    enc = ArchEncoder(SPACE)
    a = ("none",) * 6
    b = ("nor_conv_3x3",) + ("none",) * 5
    d = enc.delta(a, b)
    assert d.shape == (30,) and d.sum() == 0 and d.abs().sum() == 2
    assert d[NB201_OPS.index("nor_conv_3x3")] == 1 and d[0] == -1
    x = enc(sample(20, 0))
    dist = changed_rows(x, x)
    archs = sample(20, 0)
    assert all(
        dist[i, j] == SPACE.distance(archs[i], archs[j]) for i in range(20) for j in range(20)
    )


def test_weighted_pairs_keep_every_pair_or_draw_the_close_ones() -> None:
    archs = sample(40, 1)
    x = ArchEncoder(SPACE)(archs)
    gen = torch.Generator().manual_seed(0)
    every, weight = weighted_pairs(x, 0.5, 10**6, gen)
    every = every.tolist()
    assert len(every) == 40 * 39 and all(i != j for i, j in every)
    distances = torch.tensor([SPACE.distance(archs[i], archs[j]) for i, j in every])
    assert torch.allclose(weight, 0.5 ** (distances - 1.0))  # the decay weighs every pair
    drawn = weighted_pairs(x, 0.25, 200, gen)[0].tolist()
    assert len(drawn) == len(set(map(tuple, drawn))) == 200
    mean = sum(SPACE.distance(archs[i], archs[j]) for i, j in drawn) / 200
    everywhere = sum(SPACE.distance(archs[i], archs[j]) for i, j in every) / len(every)
    assert mean < everywhere - 1  # the draw favours close pairs
    with pytest.raises(ValueError, match="decay"):
        weighted_pairs(x, 0.0, 10, gen)


def test_the_decay_changes_the_fit_below_max_pairs() -> None:
    """A pipeline-sized archive has fewer pairs than ``max_pairs``: the decay still weighs
    them, so another decay fits another predictor (and ``decay=1`` trains uniformly)."""
    archs = sample(30, 3)
    scores = [toy_score(a) for a in archs]
    preds = []
    for decay in (1.0, 0.2, 0.2):
        pred = DeltaPredictor(SPACE, TrainConfig(steps=40), decay=decay)
        pred.fit(archs, scores)
        preds.append(pred.predict(sample(10, 4)).mean)
    assert torch.equal(preds[1], preds[2]) and not torch.allclose(preds[0], preds[1])


def test_antisymmetry_is_exact() -> None:
    f = Antisymmetric(EnsembleMLP(3, 60, 16, 2, torch.Generator().manual_seed(0)), odd=30)
    d, c = torch.randn(50, 30), torch.randn(50, 30)
    assert torch.equal(f(torch.cat([-d, c], 1)), -f(torch.cat([d, c], 1)))
    pred = DeltaPredictor(SPACE, TrainConfig(steps=20))
    archs = sample(30, 2)
    pred.fit(archs, [toy_score(a) for a in archs])
    fwd = pred.predict_difference(archs[:10], archs[10:20]).mean
    bwd = pred.predict_difference(archs[10:20], archs[:10]).mean
    assert torch.equal(fwd, -bwd)


@pytest.mark.parametrize("kind", [DeltaPredictor, AbsolutePredictor])
def test_recovers_additive_ranking(kind) -> None:
    train, test = sample(300, 3)[:100], sample(300, 3)[100:]
    pred = kind(SPACE, TrainConfig(seed=0))
    pred.fit(train, [toy_score(a) for a in train])
    out = pred.predict(test)
    assert out.mean.shape == out.std.shape == (200,)
    tau = kendalltau(out.mean.numpy(), [toy_score(a) for a in test])[0]
    assert tau > 0.8


def test_fit_is_deterministic_and_checks_inputs() -> None:
    archs = sample(40, 4)
    y = [toy_score(a) for a in archs]
    preds = []
    for _ in range(2):
        p = DeltaPredictor(SPACE, TrainConfig(seed=7, steps=50))
        p.fit(archs, y)
        preds.append(p.predict(archs[:5]).mean)
    assert torch.equal(*preds)
    with pytest.raises(ValueError, match="finite"):
        DeltaPredictor(SPACE).fit(archs[:2], [1.0, float("-inf")])
    with pytest.raises(ValueError, match="2 scores"):
        AbsolutePredictor(SPACE).fit(archs[:3], y[:2])
    with pytest.raises(RuntimeError, match="not fitted"):
        AbsolutePredictor(SPACE).predict(archs)


def test_darts_encoding_and_fit() -> None:
    darts = get_space("darts")
    rng = random.Random(0)
    archs = [darts.sample(rng) for _ in range(6)]
    archs += [darts.mutate(a, rng) for a in archs]
    enc = ArchEncoder(darts)(archs)
    assert enc.shape == (12, 2 * 14 * 8)
    # a mutation changes one gene: its op (one edge row) or its input (two edge rows)
    assert all(darts.distance(a, b) == 1 for a, b in zip(archs[:6], archs[6:], strict=True))
    assert set(changed_rows(enc[:6], enc[6:]).diagonal().tolist()) <= {1, 2}
    pred = DeltaPredictor(darts, TrainConfig(steps=5))
    pred.fit(archs, [float(i) for i in range(12)])
    assert pred.predict(archs[:3]).mean.shape == (3,)


def test_delta_predictor_ranks_random_darts_genotypes_by_an_additive_score() -> None:
    """In the DARTS space random genotypes lie 8-12 edits apart; the default settings still
    learn an additive score (each op per edge and cell kind adds a fixed weight) from 150
    random genotypes and rank 200 others, as well as the absolute predictor does."""
    darts = get_space("darts")
    weights = torch.randn(darts.encoding_size, generator=torch.Generator().manual_seed(0))

    def score(arch) -> float:
        return float(darts.encode(arch) @ weights)

    rng = random.Random(1)
    archs = list(dict.fromkeys(darts.sample(rng) for _ in range(350)))
    train, test = archs[:150], archs[150:350]
    enc = ArchEncoder(darts)(train)
    assert float(changed_rows(enc, enc).float().mean()) > 8  # far apart
    taus = {}
    for kind in (DeltaPredictor, AbsolutePredictor):
        pred = kind(darts, TrainConfig(seed=0))
        pred.fit(train, [score(a) for a in train])
        taus[kind] = kendalltau(pred.predict(test).mean.numpy(), [score(a) for a in test])[0]
    assert taus[DeltaPredictor] > 0.6
    assert taus[DeltaPredictor] > taus[AbsolutePredictor] - 0.05


def _hidden(arch) -> float:
    """A score the encoding alone cannot learn from few archs: a hash of the whole cell."""
    return float(zlib.crc32(SPACE.to_str(arch).encode()) % 1000) / 100


@pytest.mark.parametrize("kind", [DeltaPredictor, AbsolutePredictor])
def test_a_feature_that_carries_the_score_lifts_the_predictor(kind) -> None:
    """Per-arch features follow the encoding (the delta predictor reads their differences):
    with a feature that carries the score, a predictor ranks unseen archs it cannot rank from
    the encoding alone; neighbours are still found by edits of the encoding."""
    train, test = sample(260, 5)[:60], sample(260, 5)[60:]

    def feature(archs):
        return torch.tensor([[_hidden(a) / 5 - 1] for a in archs])

    truth = [_hidden(a) for a in test]
    taus = {}
    for with_feature in (False, True):
        extra = {"features": feature, "feature_names": ["hidden"]} if with_feature else {}
        pred = kind(SPACE, TrainConfig(seed=0), **extra)
        pred.fit(train, [_hidden(a) for a in train])
        taus[with_feature] = kendalltau(pred.predict(test).mean.numpy(), truth)[0]
    assert taus[True] > 0.7 and taus[False] < 0.3
    encoder = ArchEncoder(SPACE, feature, ["hidden"])
    x = encoder(test[:4])
    assert x.shape == (4, 31) and torch.equal(x[:, :30], ArchEncoder(SPACE)(test[:4]))
    assert torch.equal(x[:, 30], feature(test[:4])[:, 0])
    with pytest.raises(ValueError, match="names"):
        ArchEncoder(SPACE, feature)
