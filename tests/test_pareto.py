"""The one Pareto / hypervolume implementation (reports/pareto.py), against brute force."""

import itertools

import numpy as np
import pytest

from trilevel.reports.pareto import (
    as_minimisation, dominance_matrix, hypervolume_2d, nondominated_fronts, pareto_indices,
)


def brute_front(points):
    """Indices of points no other point is at least as good as everywhere and better somewhere (max, max)."""
    out = []
    for i, p in enumerate(points):
        if not any(q[0] >= p[0] and q[1] >= p[1] and (q[0] > p[0] or q[1] > p[1]) for q in points):
            out.append(i)
    return out


def brute_area(points, ref, step=0.01):
    """Dominated area on a grid of cell centres (max, max): an independent estimate."""
    xs = np.arange(ref[0] + step / 2, 1.0, step)
    ys = np.arange(ref[1] + step / 2, 4.0, step)
    X, Y = np.meshgrid(xs, ys)
    covered = np.zeros_like(X, dtype=bool)
    for a, s in points:
        covered |= (X <= a) & (Y <= s)
    return covered.sum() * step * step


@pytest.mark.parametrize("seed", range(5))
def test_front_and_hypervolume_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    # accuracies on a 1/20 grid so that ties and identical points occur
    points = [(round(a * 20) / 20, s) for a, s in zip(rng.uniform(0, 1, 30), rng.choice([1.0, 1.5, 2.0, 3.0], 30))]
    assert pareto_indices(points, ("max", "max")) == brute_front(points)
    assert hypervolume_2d(points, (0.0, 0.0)) == pytest.approx(brute_area(points, (0.0, 0.0)), abs=0.05)


def test_hypervolume_exact_values_and_reference():
    assert hypervolume_2d([(0.8, 2.0)], (0.0, 0.0)) == pytest.approx(1.6)
    assert hypervolume_2d([(0.9, 1.0), (0.8, 2.0), (0.6, 3.0), (0.5, 1.5)], (0, 0)) == pytest.approx(2.3)
    # a reference a user cares about (speedup 1, dense - 10 points): what lies beyond it adds nothing
    assert hypervolume_2d([(0.85, 2.0), (0.70, 3.0)], (0.80, 1.0)) == pytest.approx(0.05 * 1.0)
    assert hypervolume_2d([], (0, 0)) == 0.0
    # minimised objectives: (error, seconds) with reference (1, 10)
    assert hypervolume_2d([(0.2, 5.0)], (1.0, 10.0), ("min", "min")) == pytest.approx(0.8 * 5.0)
    with pytest.raises(ValueError):
        hypervolume_2d([(1, 2, 3)], (0, 0, 0), ("max", "max", "max"))


def test_identical_points_are_all_kept_and_do_not_dominate_each_other():
    points = [(0.8, 2.0), (0.8, 2.0), (0.7, 1.0)]
    assert pareto_indices(points, ("max", "max")) == [0, 1]
    assert not dominance_matrix(as_minimisation(points, ("max", "max")))[0, 1]


def test_fronts_partition_and_order():
    rng = np.random.default_rng(0)
    F = rng.integers(0, 5, size=(40, 3)).astype(float)
    fronts = nondominated_fronts(F)
    assert sorted(itertools.chain.from_iterable(f.tolist() for f in fronts)) == list(range(40))
    D = dominance_matrix(F)
    for k, front in enumerate(fronts):
        assert not D[np.ix_(front, front)].any()  # nobody in a front dominates a peer
        if k:  # everyone in a later front is dominated by someone in the front before it
            assert D[np.ix_(fronts[k - 1], front)].any(0).all()


def test_epsilon_cycles_end_in_one_front():
    # with eps 1 in three objectives every one of these is epsilon-dominated by another (a cycle)
    F = np.array([[1.0, 1.0, 2.0], [0.0, 3.0, 1.0], [2.0, 2.0, 0.0]])
    eps = np.ones(3)
    assert dominance_matrix(F, eps).any(0).all()
    assert [f.tolist() for f in nondominated_fronts(F, eps)] == [[0, 1, 2]]


def test_directions_are_checked():
    with pytest.raises(ValueError, match="directions"):
        as_minimisation([(1, 2)], ("max", "up"))
