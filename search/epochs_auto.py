"""`--epochs auto`: the proxy's length from dense's own learning curve, measured before any trial.

Why: the proxy's length decides whether its rankings mean anything. On a user's data nobody knows
it in advance: a new user's 4-epoch search on 2,000 grayscale images ranked configurations while
dense was still in its steep early phase (dense trained shorter gave 26.6 / 37.9 / 46.0% at 1 / 2 /
3 of the 4 epochs, 57.4% at 4), and nothing said that a longer proxy was the fix. The search trains
dense first anyway; its curve says how long is long enough.

How: dense is trained on the search's seed at doubling lengths (`START`, 6, 12, ... epochs, the
last one capped at `max_epochs`), each with its whole schedule: a run of L epochs, not the first L
epochs of a longer run, since the trials will be runs of L epochs. The doubling stops once it gains
less than the noise (below), or at the cap. A length at which dense has not learned (below chance
+ 10 points, the validity bar of reports/noise.py) never stops it. The trials then use the shortest
measured length whose accuracy is within that noise of the most accurate one's (`choose`); the extra dense seeds,
the train-shorter runs and the fidelity check follow at that length.

The noise: when the lengths are chosen, no seed spread is known yet (the extra dense seeds train
afterwards, at the chosen length), so it is the 90% resolution of a difference between two single
runs from the validation set's binomial error (`reports.noise.one_run_noise_pts`), the floor of
every noise estimate the search makes. Seed noise is usually larger, so `auto` errs towards the
longer proxy: the safe side for rankings, the costly side for time. The report's "still climbing"
warning (`reports.noise.proxy_climb`) checks the result against the seeds' resolution afterwards.

Resume: each finished length is recorded in search.json (`epochs_auto.curve`) at once, so a resumed
search trains only the lengths it had not finished.

Written by hand: no library sizes a training proxy from a learning curve.
"""

from __future__ import annotations

from typing import Callable

from trilevel.store.run_store import CurvePoint, EpochsAuto
from trilevel.reports.noise import learned, one_run_noise_pts, validity_threshold
from trilevel.reports.proxy import describe_epochs_auto

from .constants import EPOCHS_AUTO_START as START


def lengths(max_epochs: int, start: int = START) -> list[int]:
    """Every length the doubling may train: start, 2 x start, ... and the cap itself last."""
    out, length = [], min(start, max_epochs)
    while True:
        out.append(length)
        if length >= max_epochs:
            return out
        length = min(2 * length, max_epochs)


def _learned(point: CurvePoint, record: EpochsAuto) -> bool:
    threshold = None if record.chance_acc is None else validity_threshold(record.chance_acc)
    return learned(point.acc, threshold)


def decided(record: EpochsAuto) -> bool:
    """Whether the curve so far ends the doubling: the last doubling gained less than the noise
    (the shorter length having learned), or the cap was reached."""
    curve = record.curve
    if not curve:
        return False
    if curve[-1].epochs >= record.max_epochs:
        return True
    if len(curve) < 2:
        return False
    shorter, longer = curve[-2], curve[-1]
    gain = 100 * (longer.acc - shorter.acc)
    return _learned(shorter, record) and gain < one_run_noise_pts(longer.acc, record.num_val)


def choose(record: EpochsAuto) -> tuple[int, float]:
    """(the length the trials use, the noise it was judged by): the shortest measured length that
    learned and is within the noise of the most accurate length (that length when none is).

    The reference is the most accurate length, not the longest: one seed's curve is not monotone.
    Measured on digits (2026-12-03, benchmarks/results/epochs_auto_digits): 3 / 6 / 12 / 24 epochs gave
    61.1 / 93.3 / 97.2 / 95.6%; against the longest, 6 epochs was "within 3.6 points" and chosen,
    where dense's seeds spread by 5.1 points (resolution 12.9) and the pick lost 6.7 points [-12.3,
    -1.0]; against the best (97.2%, noise 2.9 points) the choice is 12."""
    best = max(record.curve, key=lambda p: (p.acc, -p.epochs))
    noise = one_run_noise_pts(best.acc, record.num_val)
    for point in record.curve:
        if _learned(point, record) and 100 * (best.acc - point.acc) <= noise:
            return point.epochs, noise
    return best.epochs, noise


def run(record: EpochsAuto, measure: Callable[[int], tuple[CurvePoint, float | None, int | None]],
        save: Callable[[EpochsAuto], None], say: Callable[[str], None]) -> EpochsAuto:
    """Train the lengths `record` lacks until the curve decides, then set `record.chosen`.

    `measure(epochs)` trains dense for that many epochs and returns (the point, chance accuracy,
    validation size); `save(record)` persists the record after each length (a resume continues
    from it). A length already in `record.curve` is never trained again."""
    done = {p.epochs for p in record.curve}
    for length in lengths(record.max_epochs):
        if decided(record):
            break
        if length in done:
            continue
        say(f"--epochs auto: training dense for {length} epochs (seed {record.seed}) ...")
        point, chance, num_val = measure(length)
        record.curve.append(point)
        record.curve.sort(key=lambda p: p.epochs)
        record.chance_acc = record.chance_acc if chance is None else chance
        record.num_val = record.num_val if num_val is None else num_val
        save(record)
    record.chosen, record.noise_pts = choose(record)
    save(record)
    say(describe_epochs_auto(record))
    return record
