"""Does the search's ranking survive longer training? The fidelity check, read.

The search ranks configurations on short proxy runs. Before a user spends a full training run on
the pick, the search trains dense, the pick and its nearest rivals for a multiple of the proxy's
epochs on one seed (`search/runner.py` `_fidelity_check`). This module says what that shows:

* the Spearman rank correlation between the accuracy the search ranked on and the longer runs'
  (1: the same order; near 0: the proxy's order says little about longer training);
* whether the pick still holds. When the search picked the fastest configuration within
  `max_acc_drop` points of dense, it holds if it is still within them after longer training (and
  the report names a faster rival that now qualifies too). When no configuration was within and
  the search picked the most accurate finalist, it holds if it is still the most accurate (ties go
  to the pick).

One seed: a margin smaller than the search's stated resolution is no evidence against the pick; the
report says so next to the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trilevel.store.run_store import FidelityCheck, FidelityRun, TrialRecord

from .selection import PickKind


@dataclass
class FidelityVerdict:
    check: FidelityCheck
    dense: FidelityRun | None
    spearman: float | None  # over every configuration trained longer, dense included (None: < 3 or constant)
    pick: FidelityRun | None
    chosen: str | None  # trial id the pick rule chooses on the longer runs (None: none qualifies)
    holds: bool | None  # the pick still qualifies (within) / is still the most accurate (closest); None: not judged
    margin_pts: float | None = None  # by how much it fails: below the budget (within) or behind `chosen` (closest)
    why_not: str | None = None  # why it was not judged (holds None)

    @property
    def pick_delta_pts(self) -> float | None:
        """The pick minus dense at the longer fidelity, in points."""
        if self.pick is None or self.dense is None:
            return None
        return 100 * (self.pick.acc - self.dense.acc)

    def refutes(self, resolution_pts: float | None) -> bool:
        """The check counts against the pick: it fails by at least the stated resolution (one seed:
        a smaller margin is noise, no evidence either way)."""
        if self.holds is not False:
            return False
        return resolution_pts is None or self.margin_pts is None or self.margin_pts >= resolution_pts

    @classmethod
    def build(cls, check: FidelityCheck | None, pick: TrialRecord | None, baseline: TrialRecord | None,
              speeds: dict[str, float | None], max_acc_drop: float, rule: str) -> "FidelityVerdict | None":
        """`speeds`: trial id -> speedup of every trial; `rule`: how the search chose its pick (the
        selection's kind): "within" the accuracy budget, or the "closest" finalist. A pick chosen
        otherwise (the knee of the front) is reported, not judged."""
        if check is None:
            return None
        if check.skipped or not check.runs:
            return cls(check, None, None, None, None, None)
        by_id = {r.trial_id: r for r in check.runs}
        dense = by_id.get(baseline.trial_id) if baseline is not None else None
        mine = by_id.get(pick.trial_id) if pick is not None else None
        rho = spearman([r.search_acc for r in check.runs], [r.acc for r in check.runs])
        rivals = [r for r in check.runs if r is not dense and (speeds.get(r.trial_id) or 0) > 1.0]
        why = ("dense's longer run did not finish" if dense is None else
               "the pick shown was not among the configurations checked (another --max-acc-drop?)" if mine is None
               or mine not in rivals else
               None if rule in (PickKind.WITHIN, PickKind.CLOSEST) else "the pick is the knee of the front: no rule to re-apply")
        if why:
            return cls(check, dense, rho, mine, None, None, why_not=why)
        speed = lambda r: speeds[r.trial_id]  # noqa: E731
        if rule == PickKind.WITHIN:
            floor = dense.acc - max_acc_drop / 100 - 1e-12
            ok = [r for r in rivals if r.acc >= floor]
            chosen = max(ok, key=lambda r: (speed(r), r is mine)).trial_id if ok else None
            return cls(check, dense, rho, mine, chosen, mine in ok, max(0.0, 100 * (floor - mine.acc)))
        best = max(rivals, key=lambda r: (r.acc, r is mine, speed(r)))  # ties go to the pick
        return cls(check, dense, rho, mine, best.trial_id, best is mine, 100 * (best.acc - mine.acc))


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (scipy's, ties averaged); None for fewer than 3 pairs or a
    constant side, where it is undefined."""
    if len(x) < 3 or len(set(x)) == 1 or len(set(y)) == 1:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return None if rho is None or math.isnan(rho) else float(rho)
