"""Pareto fronts, crowding and hypervolume (every objective minimised)."""

import numpy as np
import pytest

from nas.evolution.pareto import (
    crowding_distance,
    hypervolume_2d,
    knee,
    non_dominated_fronts,
    nsga2_order,
)

POINTS = np.array([(1, 5), (2, 3), (3, 4), (4, 1), (2, 6), (5, 5)], dtype=float)


def test_fronts_peel_the_non_dominated_sets_in_turn():
    fronts = non_dominated_fronts(POINTS)
    assert [f.tolist() for f in fronts] == [[0, 1, 3], [2, 4], [5]]


def test_equal_points_share_a_front_and_nan_is_the_worst_value():
    points = np.array([(1, 1), (1, 1), (np.nan, np.nan), (2, np.nan)])
    assert [f.tolist() for f in non_dominated_fronts(points)] == [[0, 1], [3], [2]]


def test_crowding_gives_the_ends_infinity_and_the_middle_its_neighbours_gap():
    front = POINTS[[0, 1, 3]]  # (1,5) (2,3) (4,1)
    d = crowding_distance(front)
    assert np.isinf(d[0]) and np.isinf(d[2])
    assert d[1] == pytest.approx((4 - 1) / (4 - 1) + (5 - 1) / (5 - 1))


def test_nsga2_order_takes_fronts_first_then_the_spread_out_members():
    points = np.array([(1, 4), (2, 3), (2.2, 2.8), (4, 1), (5, 5)])
    order = nsga2_order(points).tolist()
    assert order[-1] == 4  # the only dominated point
    assert set(order[:2]) == {0, 3}  # the first front's ends
    # (2.2,2.8) lies between (2,3) and (4,1): gaps 2/3 + 2/3; (2,3) between (1,4) and
    # (2.2,2.8): 1.2/3 + 1.2/3
    assert order[2:4] == [2, 1]


def test_hypervolume_of_a_staircase():
    points = np.array([(1, 3), (2, 2), (3, 1), (3, 3), (5, 0.5)])  # (3,3) dominated; x=5 past 4
    assert hypervolume_2d(points, (4, 4)) == pytest.approx(1 * 1 + 1 * 2 + 1 * 3)
    assert hypervolume_2d(np.empty((0, 2)), (4, 4)) == 0.0


def test_hypervolume_equals_counting_the_dominated_unit_squares():
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = rng.integers(0, 12, (rng.integers(1, 9), 2)).astype(float)
        count = sum(
            any(px <= i and py <= j for px, py in points) for i in range(10) for j in range(10)
        )
        assert hypervolume_2d(points, (10, 10)) == pytest.approx(count)


def test_bench_pareto_ratios_grow_with_the_queries_and_stay_below_the_true_front():
    """scripts/bench_pareto.py on the NAS-Bench-201 table: each search spends its budget and
    its front's hypervolume ratio never falls as queries come and never passes 1."""
    import importlib.util
    import itertools
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_pareto.py"
    spec = importlib.util.spec_from_file_location("bench_pareto", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from nas.evaluate import NB201Table

    table = NB201Table()
    latency = table.column("fpga")
    accuracy = table.column(bench.METRIC)
    reference = (-bench.CHANCE, float(np.nanmax(latency)))
    ok = ~np.isnan(accuracy) & ~np.isnan(latency)
    true_hv = hypervolume_2d(np.column_stack([-accuracy[ok], latency[ok]]), reference)
    for name in ("random", "nsga2", "refine"):
        points = bench.run_search(name, table, latency, 40, seed=0)
        ratios = bench.curve(points, reference, true_hv)
        assert len(points) == len(ratios) == 40
        assert all(b >= a for a, b in itertools.pairwise(ratios)) and 0 < ratios[-1] <= 1
    out = subprocess.run(
        [sys.executable, str(script), "--devices", "fpga", "--seeds", "1", "--budget", "10",
         "--checkpoints", "5", "10", "--searches", "random", "nsga2"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "| fpga | random |" in out and "| fpga | nsga2 |" in out


def test_the_knee_is_the_front_point_farthest_from_the_line_between_its_ends():
    # score (negated) against latency: a sharp bend at (2, -0.9)
    front = np.array([[1.0, -0.1], [2.0, -0.9], [3.0, -0.95], [4.0, -1.0]])
    assert knee(front) == 1
    assert knee(front[[0, 3]]) == 0  # two points: no bend
    assert knee(np.array([[1.0, -1.0], [1.0, -1.0], [1.0, -1.0]])) == 0  # one point thrice
