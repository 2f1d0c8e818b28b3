"""The latency lookup table: ops timed once, an arch's latency their sum plus a fixed part,
cached by what it depends on, checked against end-to-end timings."""

from __future__ import annotations

import random

import pytest
import torch

from nas.cost.latency import (
    LatencyModel,
    cached_latency,
    check,
    latency_file,
    latency_key,
    measure_latency,
)
from nas.spaces import get_space

CONV = ("nor_conv_3x3",) * 6
SKIP = ("skip_connect",) * 6
NONE = ("none",) * 6


@pytest.fixture(scope="module")
def nb201():
    space = get_space("nb201", c=8, n_cells=1)
    x = torch.randn(2, 3, 16, 16)
    key = latency_key({"name": "nb201", "c": 8, "n_cells": 1}, x.shape, 10, x.device)
    return space, x, measure_latency(space, 10, x, key, warmup=1, repeats=5, calibration=3)


def test_an_arch_costs_the_fixed_part_plus_its_ops(nb201):
    space, _, model = nb201
    edges = list(model.ops)
    assert len(edges) == 3 * 6  # three stages of one cell, six edges each
    j = space.op_names.index("nor_conv_3x3")
    assert model.ms(CONV) == pytest.approx(model.base_ms + sum(model.ops[e][j] for e in edges))
    assert model.ms(NONE) == pytest.approx(model.base_ms)  # a `none` edge costs nothing
    # a 3x3 convolution on every edge is slower than the identity on every edge
    assert model.ms(CONV) > model.ms(SKIP) > model.base_ms


def test_the_table_is_cached_under_a_name_of_what_it_depends_on(nb201, tmp_path):
    space, x, model = nb201
    path = tmp_path / latency_file(model.key)
    assert cached_latency(path, space, lambda: model) is model
    again = cached_latency(path, space, lambda: pytest.fail("measured twice"))
    assert isinstance(again, LatencyModel) and again.to_json() == model.to_json()
    other = latency_key({"name": "nb201", "c": 16, "n_cells": 1}, x.shape, 10, x.device)
    assert latency_file(other) != latency_file(model.key)
    assert latency_file({**model.key, "input": [1, 3, 16, 16]}) != latency_file(model.key)


def test_the_check_compares_predicted_and_measured_latency(nb201):
    space, x, model = nb201
    rng = random.Random(0)
    archs = [CONV, SKIP, *(space.sample(rng) for _ in range(4))]
    r = check(model, 10, x, archs, warmup=1, repeats=5)
    assert len(r["measured_ms"]) == len(r["predicted_ms"]) == 6
    assert r["predicted_ms"] == [model.ms(a) for a in archs]
    assert all(m > 0 for m in r["measured_ms"])
    assert -1 <= r["spearman"] <= 1 and r["mape"] >= 0
