"""What the dense seeds say about a search: did dense learn, and which differences are real.

Three rules, pure functions over accuracies (fractions 0..1) so the search, the report and the
tests apply the same ones:

- **Validity** (`check_learned`): dense learned when every dense seed reaches at least chance + 10
  points. Chance is the majority-class share of the validation set (1/classes when balanced); 10
  points is 4.5 binomial standard errors of a chance-level accuracy on 180 images, so no run reaches
  it by luck. Requiring it of every seed (not of the mean) catches the proxy whose takeoff is a
  coin flip: one seed that took off cannot lift two at chance over the bar. A rule on the mean
  minus 3 seed standard deviations was tried first and rejected: on 2 seeds at 39% and 55% (chance
  10%) it called a clearly learned model unlearned, because two seeds barely estimate a spread.
  Below the bar every accuracy the search measures is noise and nothing is ranked or exported.
- **Resolution** (`resolution_pts`): the half-width of the 90% interval of the accuracy difference
  between a configuration and dense, each averaged over `n` paired seeds. The per-run spread is the
  dense seeds' sample standard deviation, floored by the binomial standard error of one accuracy
  on the validation set (a handful of seeds can show an accidentally tiny spread), and the
  interval uses Student's t with the dense seeds' degrees of freedom. Differences smaller than the
  resolution cannot be told from seed noise.
- **Paired difference** (`paired_delta`): for a finalist re-trained on the dense seeds, the mean of
  the per-seed differences (finalist seed s minus dense seed s) with its 90% paired-t interval;
  with a single pair the interval comes from the resolution's spread instead.

- **Still climbing** (`proxy_climb`): dense's rise over the last third of its run against the
  resolution; more than that, and the proxy is too short for its rankings to hold. A schedule that
  decays to its end rises most in its last third whether or not more epochs would help (CIFAR-10,
  12 epochs: +3.1 over the last 4, yet 24 epochs gained +0.8), so where dense was also trained
  longer on the same seed, that run decides (`settle_climb`): a gain within one run's noise means
  the length holds.

Written by hand (a few lines): scipy's `ttest_rel` gives p-values, not the interval we report, and
the floor by the validation size is specific to this use.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from trilevel.store.run_store import COMPLETED, ProxyClimb, TrialRecord

from .selection import holds

CONFIDENCE = 0.90
MIN_MARGIN = 0.10  # every dense seed must beat chance by at least 10 points
EXIT_NOT_LEARNED = 4  # trilevel-search's exit code when the dense proxy did not learn


def _t_quantile(dof: int) -> float:
    """Two-sided CONFIDENCE quantile of Student's t (normal when dof is unknown or large)."""
    from scipy.stats import norm, t

    q = 0.5 + CONFIDENCE / 2
    return float(norm.ppf(q)) if dof < 1 else float(t.ppf(q, dof))


def seed_sd(accs: Sequence[float]) -> float:
    """Sample standard deviation over seeds (0 with fewer than two)."""
    return statistics.stdev(accs) if len(accs) >= 2 else 0.0


@dataclass
class Validity:
    """Whether dense learned, and the numbers behind the verdict (fractions)."""

    learned: bool
    mean: float | None
    sd: float
    chance: float
    threshold: float  # the mean accuracy dense needed
    seeds: int

    @classmethod
    def from_dict(cls, data: dict) -> "Validity":
        return cls(bool(data["learned"]), data.get("dense_mean"), float(data.get("dense_sd") or 0.0),
                   float(data["chance"]), float(data["threshold"]), int(data.get("seeds") or 0))

    def to_dict(self) -> dict:
        return {"learned": self.learned, "dense_mean": self.mean, "dense_sd": self.sd, "chance": self.chance,
                "threshold": self.threshold, "seeds": self.seeds, "rule": RULE}

    def explanation(self, epochs: int, num_train: int | None = None, num_val: int | None = None) -> str:
        """One plain paragraph: what was measured, and what to change."""
        mean = "no finished dense run" if self.mean is None else f"{100 * self.mean:.1f}%"
        sizes = ""
        if num_train:
            sizes = f" on {num_train:,} training images" + (f" ({num_val:,} validation)" if num_val else "")
        return (
            f"The dense model did not learn in the proxy run: {mean} mean validation accuracy over "
            f"{self.seeds} seed(s) after {epochs} epochs{sizes}, against {100 * self.chance:.1f}% for "
            f"always guessing the most frequent class; the search needs {100 * self.threshold:.1f}% on "
            f"every seed ({RULE}). Every pruned configuration would be ranked on noise, so "
            "nothing was ranked or exported. To fix it: train longer (--epochs), give it more training "
            "data (a larger --train-subset or dataset), a larger validation set, or a recipe that learns "
            "faster on this data (--config with lr, warmup, batch_size, augment); check first that "
            "`trilevel-train` with the same flags learns."
        )


RULE = "every dense seed at least chance + 10 points"


def validity_threshold(chance: float) -> float:
    """The accuracy a run needs to count as having learned anything: chance + 10 points, or halfway
    from chance to 100% when the majority class alone is above 80% (a bar above 100% would refuse
    every search on such data)."""
    return chance + min(MIN_MARGIN, (1.0 - chance) / 2)


def check_learned(accs: Sequence[float], chance: float) -> Validity:
    """Validity of a dense baseline measured on `accs` (one accuracy per seed)."""
    accs = [float(a) for a in accs]
    threshold = validity_threshold(chance)
    mean = statistics.fmean(accs) if accs else None
    ok = bool(accs) and all(learned(a, threshold) for a in accs)
    return Validity(ok, mean, seed_sd(accs), chance, threshold, len(accs))


def learned(acc: float | None, threshold: float | None) -> bool:
    """Whether one run's accuracy is above the chance level the dense check used (None: unknown, so
    nothing is excluded). The comparison is the report's one rule, `selection.holds`."""
    return threshold is None or holds(acc, threshold)


def binomial_sd(acc: float, num_val: int | None) -> float:
    """Standard error of one accuracy measured on `num_val` validation images (0 when unknown);
    at 0% or 100% it is taken as that of one image in 2 * num_val, not zero."""
    if not num_val:
        return 0.0
    p = min(max(acc, 0.0), 1.0)
    return math.sqrt(max(p * (1 - p), 0.5 / num_val) / num_val)


def run_sd(dense_accs: Sequence[float], num_val: int | None) -> float:
    """The spread of one run's accuracy: seed sd, floored by the validation set's binomial error."""
    if not dense_accs:
        return 0.0
    return max(seed_sd(dense_accs), binomial_sd(statistics.fmean(dense_accs), num_val))


def resolution_pts(dense_accs: Sequence[float], num_val: int | None, n: int | None = None) -> float | None:
    """Smallest accuracy difference (points) resolvable at 90% between two configurations averaged
    over `n` paired seeds each (default: as many as dense has). None without any dense accuracy."""
    if not dense_accs:
        return None
    n = n or len(dense_accs)
    t = _t_quantile(len(dense_accs) - 1)
    return 100 * t * math.sqrt(2) * run_sd(dense_accs, num_val) / math.sqrt(n)


def seeds_to_resolve(max_acc_drop_pts: float, dense_accs: Sequence[float], num_val: int | None,
                     limit: int = 10_000) -> int | None:
    """Seeds per configuration (dense included) at which the 90% resolution falls to
    `max_acc_drop_pts`, at the per-run spread measured now, with the t quantile of that many seeds.
    None when the budget is 0 or nothing is known; `limit` when even that many would not do."""
    sd = run_sd(dense_accs, num_val)
    if max_acc_drop_pts <= 0 or not dense_accs:
        return None
    if sd == 0:
        return 1
    for n in range(2, limit + 1):
        if 100 * _t_quantile(n - 1) * math.sqrt(2) * sd / math.sqrt(n) <= max_acc_drop_pts:
            return n
    return limit


def one_run_noise_pts(acc: float, num_val: int | None) -> float:
    """The 90% resolution of a difference between two single runs when no seed spread is known:
    the validation set's binomial error alone (the floor of every noise estimate here)."""
    return resolution_pts([acc], num_val, n=1) or 0.0


def proxy_climb(val_accs: Sequence[float], resolution: float | None) -> ProxyClimb | None:
    """Is dense still climbing at the end of its run? `val_accs`: its validation accuracy after each
    epoch (1..E). The rise over the last third (the last round(E/3) epochs, at least one) is
    compared with the stated resolution: a proxy whose dense still gains more than the search can
    resolve is ranking configurations in its steep phase, where rankings mean little. None when
    there is no resolution or fewer than two epochs."""
    accs = [float(a) for a in val_accs if a is not None]
    if resolution is None or len(accs) < 2:
        return None
    over = max(1, round(len(accs) / 3))
    rise = 100 * (accs[-1] - accs[-1 - over])
    return ProxyClimb(epochs=len(accs), over_epochs=over, rise_pts=rise, resolution_pts=float(resolution),
                      still_learning=rise > resolution)


def settle_climb(climb: ProxyClimb, longer: Sequence[tuple[int, float, float]],
                 num_val: int | None) -> ProxyClimb:
    """`climb` judged by dense's longer runs on the same seed: `longer` holds (epochs, accuracy at
    the proxy's length, accuracy at `epochs`) for each one measured (the fidelity check's dense,
    `--epochs auto`'s longer lengths). The most alarming one (largest gain beyond its noise) is
    recorded; dense is still learning only when it rises over its last third by more than the
    resolution AND that longer run gained at least one run's 90% noise. Without longer runs the
    verdict is the rise alone. Idempotent: judging a settled record again gives the same record."""
    rising = climb.rise_pts > climb.resolution_pts
    judged = [(100 * (long - short), one_run_noise_pts(long, num_val), epochs)
              for epochs, short, long in longer if epochs > climb.epochs]
    if not judged:
        if climb.longer_gain_pts is not None:  # settled before; nothing newer to judge by
            gained = climb.longer_gain_pts >= (climb.longer_noise_pts or 0.0)
            return dataclasses.replace(climb, still_learning=rising and gained)
        return dataclasses.replace(climb, still_learning=rising)
    gain, noise, epochs = max(judged, key=lambda g: (g[0] - g[1], g[2]))
    return dataclasses.replace(climb, longer_epochs=epochs, longer_gain_pts=gain, longer_noise_pts=noise,
                               still_learning=rising and gain >= noise)


def dense_climb(dense: TrialRecord | None, resolution: float | None) -> ProxyClimb | None:
    """`proxy_climb` of the search's dense trial, epoch by epoch (None until it has completed)."""
    if dense is None or dense.status != COMPLETED:
        return None
    return proxy_climb([h.get("val_acc") for h in dense.history], resolution)


@dataclass
class PairedDelta:
    delta_pts: float
    ci_pts: tuple[float, float]
    pairs: int

    def excludes_drop(self, max_acc_drop: float) -> bool:
        """True when the whole interval lies above -max_acc_drop: the drop is ruled out at 90%."""
        return self.ci_pts[0] >= -max_acc_drop


def paired_delta(accs: Sequence[float], dense_accs: Sequence[float], num_val: int | None = None) -> PairedDelta | None:
    """Mean per-seed difference (points) of `accs` against `dense_accs` (same seeds, same order)
    with its 90% interval. None without a pair."""
    pairs = min(len(accs), len(dense_accs))
    if pairs == 0:
        return None
    diffs = [100 * (a - d) for a, d in zip(accs[:pairs], dense_accs[:pairs])]
    mean = statistics.fmean(diffs)
    if pairs >= 2:
        half = _t_quantile(pairs - 1) * statistics.stdev(diffs) / math.sqrt(pairs)
        # A paired sd of zero on 2-3 seeds is luck, not certainty: never narrower than the
        # validation set allows.
        sd = binomial_sd(statistics.fmean(dense_accs[:pairs]), num_val)
        floor = _t_quantile(pairs - 1) * math.sqrt(2) * 100 * sd / math.sqrt(pairs)
        half = max(half, floor)
    else:
        half = resolution_pts(dense_accs, num_val, n=1) or 0.0
    return PairedDelta(mean, (mean - half, mean + half), pairs)
