"""Pareto dominance and hypervolume: the one implementation every part of the tool uses.

MO-ASHA's rungs (`search/moasha.py`), the report's front and hypervolume
(`reports/selection.py`), the live view and the replay benchmark all rank trials with these
functions, so a trial is on "the front" by one rule everywhere.

Hand-written in numpy (a few lines each) because no maintained library offers them as public
API in the form needed: Optuna's non-dominated sorting and WFG hypervolume live in private modules
(`optuna._hypervolume`, `optuna.study._multi_objective`), and pymoo would be a large dependency
for two functions; additive epsilon-dominance (ties within the noise) is ours in any case.

Conventions: a matrix `F` of shape (n, m) holds one objective vector per row, every objective
minimised. `directions` ("min"/"max" per objective) turns user-facing values into that form.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def as_minimisation(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """(n, m) float matrix with every "max" objective negated, so smaller is better everywhere."""
    F = np.asarray(points, dtype=float).reshape(-1, len(directions))
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    if any(d not in ("min", "max") for d in directions):
        raise ValueError(f"directions must be 'min' or 'max', got {list(directions)}")
    return F * signs


def dominance_matrix(F: np.ndarray, eps: np.ndarray | None = None) -> np.ndarray:
    """dominates[a, b]: row a is no worse than row b + eps everywhere and better than b - eps
    somewhere (additive epsilon-dominance; eps = 0 is ordinary Pareto dominance). Identical rows
    do not dominate each other."""
    eps = np.zeros(F.shape[1]) if eps is None else np.asarray(eps, dtype=float)
    a, b = F[:, None, :], F[None, :, :]
    return (a <= b + eps).all(-1) & (a < b - eps).any(-1)


def nondominated_fronts(F: np.ndarray, eps: np.ndarray | None = None) -> list[np.ndarray]:
    """Non-dominated sorting of a finite minimisation matrix into index arrays, front 0 first.

    Simple front peeling, O(n^2 m) per front: rungs and runs hold at most a few hundred trials.
    Epsilon-dominance is not transitive and can cycle; a set where every row is dominated is then
    one front, so the sort always ends.
    """
    remaining = np.arange(len(F))
    fronts = []
    while remaining.size:
        dominated = dominance_matrix(F[remaining], eps).any(0)
        if dominated.all():
            dominated[:] = False
        fronts.append(remaining[~dominated])
        remaining = remaining[dominated]
    return fronts


def pareto_indices(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points (identical points are all kept), in input order."""
    F = as_minimisation(points, directions)
    if not len(F):
        return []
    return sorted(int(i) for i in nondominated_fronts(F)[0])


def hypervolume_2d(points: Sequence[Sequence[float]], reference: Sequence[float],
                   directions: Sequence[str] = ("max", "max")) -> float:
    """Area dominated by 2-objective points and bounded by `reference` (the worst corner).

    Points at or beyond the reference in any objective add nothing. Exact: sort the
    non-dominated points by the first objective and sum the rectangles between steps.
    """
    if len(directions) != 2:
        raise ValueError("hypervolume_2d needs exactly two objectives")
    F = as_minimisation(points, directions)
    r = as_minimisation([reference], directions)[0]
    F = F[(F < r).all(1)]
    if not len(F):
        return 0.0
    F = F[nondominated_fronts(F)[0]]
    F = F[np.lexsort((F[:, 1], F[:, 0]))]  # first objective ascending; on the front the second descends
    area, prev_y = 0.0, r[1]
    for x, y in F:
        if y < prev_y:
            area += (r[0] - x) * (prev_y - y)
            prev_y = y
    return float(area)
