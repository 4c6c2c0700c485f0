"""Would training dense for fewer epochs do as well? The train-shorter curve and what it decides.

Composer measures every speed-up method against this baseline (its "scale schedule"): dense with the
whole schedule compressed to a fraction of the epochs. A sparse configuration that is 1.7x faster
but less accurate than dense trained for 1/1.7 of the epochs is of no use. The search trains dense at
`fractions` of its epochs on the dense seeds (`search/runner.py`); this module turns those runs into
a curve of (speed, accuracy), places each front configuration above or below it at equal speed, and
says what to train instead when the pick is below: a measured shortened run at least as fast and at
least as accurate as the pick, never an interpolated one.

The curve runs through the shortened runs and the full-length dense point (speed 1, dense's mean),
linearly interpolated in speed. A configuration faster than the shortest run measured lies beyond
the curve: it is not compared (None), because extrapolating dense's accuracy there is a guess.
Accuracies are means over the same seeds (the dense seeds) on both sides, so the comparison is
paired by seed like the pick itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from trilevel.store.run_store import ShorterRun


def shorter_epochs(full_epochs: int, fractions: Sequence[float]) -> list[int]:
    """Distinct whole epoch counts strictly below `full_epochs` (at least 1) for these fractions."""
    return sorted({max(1, round(f * full_epochs)) for f in fractions} - {full_epochs})


@dataclass
class ShorterCurve:
    """(speed, mean accuracy) points, slowest first, starting at full-length dense (1.0, dense mean)."""

    points: list[tuple[float, float]]
    runs: list[ShorterRun]
    speeds: list[float | None]  # each run's speedup over dense, in `runs` order

    @classmethod
    def build(cls, runs: Sequence[ShorterRun], dense_acc: float | None, full_epochs: int) -> "ShorterCurve | None":
        if dense_acc is None or not runs:
            return None
        points = [(1.0, dense_acc)]
        for run in runs:
            speed = run.speed(full_epochs)
            if speed > 1.0:
                points.append((speed, run.mean_acc))
        if len(points) < 2:
            return None
        return cls(sorted(points), list(runs), [r.speed(full_epochs) for r in runs])

    @property
    def max_speed(self) -> float:
        return self.points[-1][0]

    def acc_at(self, speed: float) -> float | None:
        """Dense's interpolated accuracy at `speed` (None beyond the fastest run measured). Below
        speed 1 it is dense's own accuracy: slower than dense, dense is already the alternative."""
        if speed <= self.points[0][0]:
            return self.points[0][1]
        for (s0, a0), (s1, a1) in zip(self.points, self.points[1:]):
            if speed <= s1:
                return a0 + (a1 - a0) * (speed - s0) / (s1 - s0)
        return None

    def beats(self, acc: float | None, speed: float | None) -> bool | None:
        """Whether (acc, speed) lies above the curve: more accurate than dense trained shorter to the
        same speed. None when it cannot be compared (no value, or faster than any run measured)."""
        if acc is None or speed is None:
            return None
        reference = self.acc_at(speed)
        return None if reference is None else acc > reference + 1e-12

    def alternative(self, speed: float, acc: float) -> ShorterRun | None:
        """The shortened dense run to train instead of a configuration at (`acc`, `speed`) that does not
        beat the curve: the most accurate measured run at least as fast *and* at least as accurate (ties:
        the faster). None when no measured run is both: the interpolated curve alone never replaces a
        measured configuration with one that was not measured to be as good."""
        fast = [(r, s) for r, s in zip(self.runs, self.speeds)
                if s is not None and s >= speed - 1e-12 and r.mean_acc >= acc - 1e-12]
        if not fast:
            return None
        return max(fast, key=lambda rs: (rs[0].mean_acc, rs[1]))[0]
