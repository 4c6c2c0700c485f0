"""Does the pick beat the papers' own settings? Each paper setting the search tried right after dense
(`origin: paper:<name>`, spaces/papers.py) against the pick, accuracy paired by seed.

The papers' settings are re-trained on the dense seeds with the finalists (search/runner.py), so the
pick minus the paper is a per-seed difference with a 90% interval (reports/noise.py `paired_delta`),
like the pick against dense. Speed is each trial's paired speedup (measured against dense inside the
trial). The verdict, for an accuracy budget of `max_acc_drop` points:

- `beats`: the pick is at least as fast and the interval rules out losing more than the budget;
- `beaten`: the paper's setting is at least as fast and the interval rules out the pick gaining more
  than the budget (the paper does as well, no slower: the search found nothing better);
- `trade-off`: one is faster and the other more accurate, both beyond the interval;
- `within noise`: the seeds cannot tell;
- `not compared`: the paper's trial did not finish, or there is no pick.
"""

from __future__ import annotations

from dataclasses import dataclass

from trilevel.store.run_store import COMPLETED, Run, TrialRecord

from .noise import PairedDelta, paired_delta, resolution_pts


@dataclass
class PaperComparison:
    name: str
    trial: TrialRecord
    delta: PairedDelta | None  # pick minus paper, points, paired by seed
    speed_ratio: float | None  # pick speed / paper speed
    verdict: str
    why: str


def compare_papers(run: Run, pick: TrialRecord | None, objective: str, max_acc_drop: float) -> list[PaperComparison]:
    """One comparison per paper trial of the run, in the order they were tried."""
    out = []
    for trial in run.trials:
        if trial.paper is None:
            continue
        if trial.status != COMPLETED or trial.val_acc is None:
            out.append(PaperComparison(trial.paper, trial, None, None, "not compared", f"its trial {trial.status}"))
            continue
        if pick is None:
            out.append(PaperComparison(trial.paper, trial, None, None, "not compared", "no pick"))
            continue
        if pick is trial:
            out.append(PaperComparison(trial.paper, trial, None, 1.0, "is the pick", "the search picked this paper's setting"))
            continue
        delta = _delta(run, pick, trial)
        ps, qs = pick.speed(objective), trial.speed(objective)
        ratio = ps / qs if ps and qs else None
        out.append(PaperComparison(trial.paper, trial, delta, ratio, *_verdict(delta, ratio, max_acc_drop)))
    return out


def _delta(run: Run, pick: TrialRecord, paper: TrialRecord) -> PairedDelta | None:
    """Pick minus paper over the seeds both ran (the search's seed first, then the dense seeds). With
    one seed the interval is the dense seeds' resolution for a single pair."""
    delta = paired_delta(pick.accs, paper.accs, run.search.num_val)
    if delta is None or delta.pairs >= 2:
        return delta
    half = resolution_pts(run.search.baseline_accs, run.search.num_val, n=1) or 0.0
    return PairedDelta(delta.delta_pts, (delta.delta_pts - half, delta.delta_pts + half), 1)


def _verdict(delta: PairedDelta | None, ratio: float | None, budget: float) -> tuple[str, str]:
    if delta is None or ratio is None:
        return "not compared", "no accuracy or speed to compare"
    low, high = delta.ci_pts
    seeds = f"{delta.pairs} seed{'s' if delta.pairs > 1 else ''}"
    if ratio >= 1.0 and low >= -budget:
        return "beats", f"{ratio:.2f}x its speed and not more than {budget:g} points worse (90%, {seeds})"
    if ratio <= 1.0 and high <= budget:
        return "beaten", f"the paper's setting is {1 / ratio:.2f}x the pick's speed and not more than {budget:g} points worse (90%, {seeds})"
    if (ratio > 1.0 and high < 0) or (ratio < 1.0 and low > 0):
        return "trade-off", "one is faster, the other more accurate, beyond the interval"
    return "within noise", f"the interval [{low:+.2f}, {high:+.2f}] points spans both answers ({seeds})"
