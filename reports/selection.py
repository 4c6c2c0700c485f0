"""Which trials matter: the Pareto front, its hypervolume, and the configuration to recommend.

Pure functions over `TrialRecord`s so the report, the exports and the tests agree on one rule.
Dominance and hypervolume come from `trilevel.reports.pareto`, the implementation MO-ASHA's rungs
use too, so "the front" means the same thing in the search, the live view and the report.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

from .pareto import hypervolume_2d, pareto_indices

from trilevel.core.status import StrEnum
from trilevel.store.run_store import COMPLETED, NOT_LEARNED, Run, TrialRecord


def pareto_front(trials: Iterable[TrialRecord], objective: str = "time") -> list[TrialRecord]:
    """Non-dominated COMPLETED trials (baseline included), maximising val_acc and speed.

    Speed is the measured `speedup`, or `flops_speedup` when `objective == "flops"`. Trials that
    lack either value cannot be placed and are left out. Sorted fastest first. Ties (identical
    points) are all kept.
    """
    placed = [
        t for t in trials
        if t.status == COMPLETED and t.val_acc is not None and t.speed(objective) is not None
    ]
    keep = pareto_indices([(t.val_acc, t.speed(objective)) for t in placed], ("max", "max"))
    front = [placed[i] for i in keep]
    return sorted(front, key=lambda t: (-t.speed(objective), -t.val_acc))


def hypervolume(points: Sequence[tuple[float, float]]) -> float:
    """Area dominated by (accuracy fraction 0..1, speedup x) points, reference point (0, 0).

    Both axes are maximised, so the reference is the worst corner: zero accuracy, zero speedup.
    A single trial at 80 % and 2x gives 0.8 * 2 = 1.6.
    """
    return hypervolume_2d(points, (0.0, 0.0), ("max", "max"))


def front_hypervolume(front: Sequence[TrialRecord], objective: str = "time") -> float:
    return hypervolume([(t.val_acc, t.speed(objective)) for t in front])


@dataclass
class DenseReference:
    """The dense accuracy the budget `max_acc_drop` is measured from, and its spread over seeds."""

    acc: float | None  # fraction; None when neither seeds nor a finished baseline trial exist
    source: str  # "seeds" | "baseline trial" | "none"
    seeds: list[float]
    std: float | None  # sample std over seeds (>= 2 seeds)
    low: float | None
    high: float | None


def dense_reference(run: Run) -> DenseReference:
    """mean(baseline_accs) when the search measured seeds, else the baseline trial's val_acc."""
    accs = list(run.search.baseline_accs)
    if accs:
        std = statistics.stdev(accs) if len(accs) >= 2 else None
        return DenseReference(statistics.fmean(accs), "seeds", accs, std, min(accs), max(accs))
    base = run.baseline
    if base is not None and base.status == COMPLETED and base.val_acc is not None:
        return DenseReference(base.val_acc, "baseline trial", [], None, None, None)
    return DenseReference(None, "none", [], None, None, None)


PICK_RULE = (
    "the fastest pruned configuration whose accuracy is within --max-acc-drop points of dense's; with "
    "finalists, their mean over the dense seeds against dense's mean over the same seeds. Trials at chance "
    "level are never ranked or picked."
)


class PickKind(StrEnum):
    """How the pick was chosen (`Selection.kind`)."""

    WITHIN = "within"  # the fastest within the accuracy budget
    CLOSEST = "closest"  # no finalist within the budget: the one nearest dense
    KNEE = "knee"  # no dense reference: the knee of the front
    NONE = "none"  # no completed trial
    NOT_LEARNED = NOT_LEARNED.value  # dense did not learn: nothing ranked


@dataclass
class Selection:
    """The recommended trial and why: `within` the accuracy budget, or the `knee` of the front."""

    trial: TrialRecord | None
    kind: PickKind
    threshold: float | None  # minimum val_acc (fraction) that counts as "equal accuracy"
    max_acc_drop: float  # points
    note: str  # one human sentence explaining the choice


def knee(front: Sequence[TrialRecord], objective: str = "time") -> TrialRecord | None:
    """The front point farthest from the line joining its extremes (both axes scaled to 0..1).

    With fewer than three points every distance is zero; ties go to the more accurate trial,
    the conservative choice.
    """
    if not front:
        return None
    accs = [t.val_acc for t in front]
    speeds = [t.speed(objective) for t in front]
    a_span = (max(accs) - min(accs)) or 1.0
    s_span = (max(speeds) - min(speeds)) or 1.0
    pts = [((s - min(speeds)) / s_span, (a - min(accs)) / a_span) for s, a in zip(speeds, accs)]
    i_slow = max(range(len(front)), key=lambda i: (accs[i], -speeds[i]))
    i_fast = max(range(len(front)), key=lambda i: (speeds[i], accs[i]))
    (x1, y1), (x2, y2) = pts[i_slow], pts[i_fast]
    length = math.hypot(x2 - x1, y2 - y1)

    def distance(i: int) -> float:
        if length == 0:
            return 0.0
        x0, y0 = pts[i]
        return abs((x2 - x1) * (y1 - y0) - (x1 - x0) * (y2 - y1)) / length

    best = max(range(len(front)), key=lambda i: (round(distance(i), 12), accs[i], speeds[i]))
    return front[best]


def _threshold(reference: DenseReference, max_acc_drop: float) -> float | None:
    return None if reference.acc is None else reference.acc - max_acc_drop / 100.0


def holds(acc: float | None, threshold: float | None) -> bool:
    """Whether an accuracy counts as equal to dense: at or above `threshold` (float fuzz ignored,
    since accuracies are fractions of a finite validation set). The one rule for every caller."""
    return threshold is not None and acc is not None and acc >= threshold - 1e-12


def choose_finalists(
    front: Sequence[TrialRecord], reference: DenseReference, max_acc_drop: float, objective: str = "time",
    k: int = 3,
) -> list[TrialRecord]:
    """The front configurations worth re-training on more seeds before one is recommended.

    One short run per configuration cannot tell a configuration that holds accuracy from one that
    drew a lucky seed (on digits a pick scored 55.6 % in the search and 20-22 % on two fresh seeds).
    So: the configurations that qualify on their search seed, fastest first (the pick and its
    safer, slower alternatives), then the near misses, most accurate first; at most `k`.
    """
    pruned = [t for t in front if not t.is_baseline and t.speed(objective) > 1.0 and t.val_acc is not None]
    threshold = _threshold(reference, max_acc_drop)
    if threshold is None:
        return sorted(pruned, key=lambda t: -t.val_acc)[:k]
    qualify = sorted((t for t in pruned if holds(t.val_acc, threshold)), key=lambda t: -t.speed(objective))
    misses = sorted((t for t in pruned if not holds(t.val_acc, threshold)), key=lambda t: -t.val_acc)
    return (qualify + misses)[:k]


def select_best(
    front: Sequence[TrialRecord], reference: DenseReference, max_acc_drop: float, objective: str = "time",
    min_acc: float | None = None,
) -> Selection:
    """The fastest non-baseline front trial with val_acc >= dense - max_acc_drop points.

    The fastest qualifying completed trial is always on the front, so searching the front is
    enough. When finalists were re-trained on more seeds (`seed_accs`), only finalists compete and
    their seed-mean accuracy counts: it is compared with dense's mean over the same seeds.
    A recommendation must beat dense (speed > 1, the baseline's speedup by definition);
    the dense baseline itself is never "the best" (it is what we compare against). When no pruned
    trial qualifies, say so and return the knee of the front instead (which may be dense); when
    finalists were re-trained and none holds, the finalist with the highest mean accuracy instead
    (kind "closest"), since the knee would rest on one seed the finalists just showed unreliable.
    `min_acc`: a finalist below it (chance level) on any seed is never the closest pick.
    """
    if not front:
        return Selection(None, PickKind.NONE, None, max_acc_drop, "no completed trial yet")
    threshold = _threshold(reference, max_acc_drop)
    finalists = [t for t in front if t.seed_accs and not t.is_baseline]
    if threshold is not None:
        candidates, seeds = (finalists, f", mean over {len(finalists[0].accs)} seeds") if finalists else (front, "")
        qualifying = [
            t for t in candidates
            if not t.is_baseline and t.speed(objective) > 1.0 and holds(t.mean_acc, threshold)
        ]
        if qualifying:
            best = max(qualifying, key=lambda t: (t.speed(objective), t.mean_acc))
            return Selection(
                best, PickKind.WITHIN, threshold, max_acc_drop,
                f"fastest configuration within {max_acc_drop:g} points of dense accuracy{seeds}",
            )
        learned = [t for t in finalists if min_acc is None or all(holds(a, min_acc) for a in t.accs)]
        if learned:  # the seeds showed none holds: recommend what they measured, not a one-seed knee
            closest = max(learned, key=lambda t: (t.mean_acc, t.speed(objective)))
            return Selection(
                closest, PickKind.CLOSEST, threshold, max_acc_drop,
                f"no finalist within {max_acc_drop:g} points of dense accuracy{seeds}; "
                "the finalist with the highest mean accuracy selected",
            )
        if finalists:
            return Selection(None, PickKind.NONE, threshold, max_acc_drop,
                             f"every finalist was at chance level on some seeds{seeds}; train dense")
        why = f"no pruned configuration within {max_acc_drop:g} points of dense accuracy"
    else:
        why = "no dense reference accuracy (no baseline seeds, no finished baseline trial)"
    return Selection(knee(front, objective), PickKind.KNEE, threshold, max_acc_drop, f"{why}; knee of the front selected")
