"""Where the speed comes from: each searched level's accuracy cost per doubling of speed, fitted over
the trials that ran to the end, and whether the level was tried down to the space's bound.

When the pick falls short of what a user wants, the next question is which level to push: the
cheap lever (few points per doubling of speed) may already sit at the space's lower bound, where
only a wider space moves it; a level that buys no measurable speed (attention masks on dense
kernels) only costs. Accuracy (points) and the log of the speedup are each fitted by ordinary least
squares as linear functions of how much each level prunes (1 - keep), dense included as the
all-zero point, with classical standard errors. "Points per 2x" is the accuracy coefficient over the
speed coefficient times ln 2, given only where the speed coefficient exceeds 2 standard errors
and 2% speed at full pruning.

Written by hand: a few lines of least squares (numpy.linalg.lstsq and s^2 (X'X)^-1); no statistics
package is a dependency. An observation over one seed per trial: the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from trilevel.store.run_store import COMPLETED, Run

MIN_RUNS = 10  # fewer finished trials than this: no fit is shown (too few to separate three levels)
AT_BOUND = 0.02  # lowest keep tried within this share of the range above the space's lower bound
MIN_LOG_SPEED = 0.02  # a level that, fully pruned, gains under 2% speed buys none worth a cost


@dataclass(frozen=True)
class LevelEffect:
    """One level: accuracy points and log speed per unit pruned (1 - keep), with standard errors."""

    level: str
    acc_pts_per_unit: float
    acc_se: float
    log_speed_per_unit: float
    log_speed_se: float
    lowest_keep_tried: float
    space_low: float | None = None

    @property
    def buys_speed(self) -> bool:
        """Its speed coefficient exceeds 2 standard errors (and 2% speed at full pruning)."""
        return self.log_speed_per_unit > max(2 * self.log_speed_se, MIN_LOG_SPEED)

    @property
    def pts_per_speed_doubling(self) -> float | None:
        """Accuracy points this level costs per doubling of speed (None: it buys no measurable speed)."""
        return self.acc_pts_per_unit / self.log_speed_per_unit * math.log(2) if self.buys_speed else None

    @property
    def speedup_alone_at_lowest(self) -> float:
        """The fitted speedup of this level alone at the lowest keep tried."""
        return math.exp(self.log_speed_per_unit * (1 - self.lowest_keep_tried))

    @property
    def at_bound(self) -> bool:
        """Tried down to the space's lower bound: only a wider space gives this level more speed."""
        return self.space_low is not None and self.lowest_keep_tried <= self.space_low + AT_BOUND * (1 - self.space_low)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "acc_pts_per_unit": round(self.acc_pts_per_unit, 4), "acc_se": round(self.acc_se, 4),
                "log_speed_per_unit": round(self.log_speed_per_unit, 4), "log_speed_se": round(self.log_speed_se, 4),
                "pts_per_speed_doubling": _round(self.pts_per_speed_doubling, 2),
                "lowest_keep_tried": round(self.lowest_keep_tried, 4), "space_low": self.space_low,
                "at_bound": self.at_bound, "speedup_alone_at_lowest": round(self.speedup_alone_at_lowest, 3)}


@dataclass(frozen=True)
class LevelEffects:
    """The fit over `runs` finished runs; `levels` cheapest lever first, those buying no speed last."""

    runs: int
    speed: str  # what the speed is: "paired speedup", "FLOPs speedup"
    acc_residual_sd: float  # points: what the additive model leaves unexplained
    levels: list[LevelEffect] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "speed": self.speed, "acc_residual_sd": round(self.acc_residual_sd, 4),
                "levels": {e.level: e.to_dict() for e in self.levels}}

    @classmethod
    def fit(cls, rows: list[tuple[Mapping[str, float], float, float]], levels: list[str], speed: str,
            bounds: Mapping[str, float | None] | None = None, min_runs: int = MIN_RUNS) -> "LevelEffects | None":
        """From rows of (keep per level, accuracy in points, speedup > 0); None with fewer than
        `min_runs` rows (or too few to fit the levels)."""
        if not levels or len(rows) < max(min_runs, len(levels) + 3):
            return None
        x = np.array([[1.0, *(1.0 - keeps[k] for k in levels)] for keeps, _, _ in rows])
        if np.linalg.matrix_rank(x) < x.shape[1]:  # a level never varied: its effect is not identified
            return None
        acc, acc_se, acc_sd = _ols(x, np.array([a for _, a, _ in rows]))
        spd, spd_se, _ = _ols(x, np.log(np.array([s for _, _, s in rows])))
        bounds = bounds or {}
        effects = [LevelEffect(k, acc[i], acc_se[i], spd[i], spd_se[i], min(keeps[k] for keeps, _, _ in rows),
                               bounds.get(k)) for i, k in enumerate(levels)]
        effects.sort(key=lambda e: (not e.buys_speed, -(e.pts_per_speed_doubling or 0.0)))
        return cls(len(rows), speed, acc_sd, effects)

    @classmethod
    def of_run(cls, run: Run, objective: str) -> "LevelEffects | None":
        """The fit over a search's trials that ran every epoch (dense included), on their own seed."""
        levels, rows, bounds = trial_rows(run, objective)
        return cls.fit(rows, levels, speed_name(objective), bounds)


def speed_name(objective: str) -> str:
    return "paired speedup" if objective == "time" else "FLOPs speedup"


def trial_rows(run: Run, objective: str) -> tuple[list[str], list[tuple[dict[str, float], float, float]], dict]:
    """A search's keep levels, its finished trials as (keep per level, accuracy in points, speedup),
    and each level's lower bound in the space (from search.json's space_spec)."""
    search = run.search
    spec = search.space_spec.get("params") or {}
    levels = sorted(k for k in search.varied if k.endswith("_keep"))
    rows = []
    for t in run.trials:
        speed = 1.0 if t.is_baseline else t.speed(objective)
        if t.status != COMPLETED or t.val_acc is None or speed is None or speed <= 0:
            continue
        config = t.config.to_dict()
        rows.append(({k: float(config[k]) for k in levels}, 100 * t.val_acc, speed))
    bounds = {k: spec[k].get("low") for k in levels if isinstance(spec.get(k), dict)}
    return levels, rows, bounds


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float], float]:
    """Slopes (intercept dropped), their standard errors, and the residual sd."""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    s2 = float(resid @ resid) / max(1, len(y) - x.shape[1])
    se = np.sqrt(np.diag(s2 * np.linalg.pinv(x.T @ x)))
    return [float(b) for b in beta[1:]], [float(s) for s in se[1:]], math.sqrt(s2)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
