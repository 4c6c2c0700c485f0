"""Does the search's ranking survive longer training? The fidelity check, read.

The search ranks configurations on short proxy runs. Before a user spends a full training run on
the pick, the search trains dense, the pick and its nearest rivals for a multiple of the proxy's
epochs on one seed (`search/runner.py` `_fidelity_check`). This module says what that shows:

* the Spearman rank correlation between the accuracy the search ranked on and the longer runs'
  (1: the same order; near 0: the proxy's order says little about longer training);
* whether the pick still holds: the search's own rule (the fastest configuration within
  `max_acc_drop` points of dense; the most accurate one when the search found none within) applied
  to the longer runs chooses the same configuration.

One seed: a difference smaller than the search's stated resolution is not a reversal; the report
says so next to the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trilevel.core.run_store import FidelityCheck, FidelityRun, TrialRecord


@dataclass
class FidelityVerdict:
    check: FidelityCheck
    dense: FidelityRun | None
    spearman: float | None  # over every configuration trained longer, dense included (None: < 3 or constant)
    pick: FidelityRun | None
    chosen: str | None  # trial id the pick rule chooses on the longer runs (None: none qualifies)
    holds: bool | None  # chosen == the search's pick (None: not checked)

    @property
    def pick_delta_pts(self) -> float | None:
        """The pick minus dense at the longer fidelity, in points."""
        if self.pick is None or self.dense is None:
            return None
        return 100 * (self.pick.acc - self.dense.acc)

    @classmethod
    def build(cls, check: FidelityCheck | None, pick: TrialRecord | None, baseline: TrialRecord | None,
              speeds: dict[str, float | None], max_acc_drop: float, within: bool) -> "FidelityVerdict | None":
        """`speeds`: trial id -> speedup of every trial; `within`: the search's pick was within the
        accuracy budget (else it was the closest, and the rule on the longer runs is "most accurate")."""
        if check is None:
            return None
        if check.skipped or not check.runs:
            return cls(check, None, None, None, None, None)
        by_id = {r.trial_id: r for r in check.runs}
        dense = by_id.get(baseline.trial_id) if baseline is not None else None
        mine = by_id.get(pick.trial_id) if pick is not None else None
        rivals = [r for r in check.runs if r is not dense and (speeds.get(r.trial_id) or 0) > 1.0]
        chosen = None
        if dense is not None and rivals:
            if within:
                ok = [r for r in rivals if r.acc >= dense.acc - max_acc_drop / 100 - 1e-12]
                chosen = max(ok, key=lambda r: speeds[r.trial_id]).trial_id if ok else None
            else:
                chosen = max(rivals, key=lambda r: (r.acc, speeds[r.trial_id])).trial_id
        holds = None if mine is None or dense is None else chosen == mine.trial_id
        return cls(check, dense, spearman([r.search_acc for r in check.runs], [r.acc for r in check.runs]),
                   mine, chosen, holds)


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (scipy's, ties averaged); None for fewer than 3 pairs or a
    constant side, where it is undefined."""
    if len(x) < 3:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return None if rho is None or math.isnan(rho) else float(rho)
