"""What the report says about the proxy's length: how `--epochs auto` chose it (search/epochs_auto.py)
and, whatever chose it, whether dense was still climbing at its end (reports/noise.py `proxy_climb`).
One line each, shared by the search's progress notes, the live view and the report."""

from __future__ import annotations

from trilevel.store.run_store import COMPLETED, EpochsAuto, ProxyClimb, SearchInfo, TrialRecord

from .noise import one_run_noise_pts, settle_climb


def describe_epochs_auto(record: EpochsAuto) -> str:
    """The curve and the choice, e.g. "--epochs auto: dense 3: 70.6%, 6: 88.3%, 12: 91.1%; the trials
    train 6 epochs, ..."."""
    curve = ", ".join(f"{p.epochs}: {100 * p.acc:.1f}%" for p in record.curve) or "nothing trained yet"
    if record.chosen is None:
        return f"--epochs auto: dense {curve} (still choosing, up to {record.max_epochs} epochs)"
    capped = ""
    if record.chosen >= record.max_epochs and len(record.curve) >= 2:
        gain = 100 * (record.curve[-1].acc - record.curve[-2].acc)
        if gain >= one_run_noise_pts(record.curve[-1].acc, record.num_val):
            capped = f"; dense still gained {gain:.1f} points at the cap, a larger --max-epochs may rank better"
    return (f"--epochs auto: dense {curve}; the trials train {record.chosen} epochs, the shortest within "
            f"{record.noise_pts or 0.0:.1f} points (one run's 90% noise) of the most accurate{capped}; the curve cost "
            f"{record.seconds / 60:.1f} min of training")


def longer_dense(info: SearchInfo, dense: TrialRecord | None) -> list[tuple[int, float, float]]:
    """Dense trained longer than the proxy on the search's seed, as (epochs, accuracy at the proxy's
    length, accuracy at `epochs`): the fidelity check's dense (against the search's dense trial) and
    `--epochs auto`'s lengths beyond the chosen one (against the curve's own point at it)."""
    out: list[tuple[int, float, float]] = []
    check = info.fidelity
    if (check is not None and dense is not None and dense.status == COMPLETED and dense.val_acc is not None
            and check.seed == info.run_config.seed):
        out += [(check.epochs, dense.val_acc, r.acc) for r in check.runs if r.trial_id == dense.trial_id]
    auto = info.epochs_auto
    if auto is not None and auto.chosen is not None:
        at = next((p.acc for p in auto.curve if p.epochs == auto.chosen), None)
        if at is not None:
            out += [(p.epochs, at, p.acc) for p in auto.curve if p.epochs > auto.chosen]
    return out


def checked_climb(climb: ProxyClimb | None, info: SearchInfo, dense: TrialRecord | None) -> ProxyClimb | None:
    """`climb` settled by every longer dense run the search measured (reports/noise.py `settle_climb`)."""
    return None if climb is None else settle_climb(climb, longer_dense(info, dense), info.num_val)


def _longer(climb: ProxyClimb) -> str:
    return f"at {climb.longer_epochs} epochs (same seed) it gained {climb.longer_gain_pts:+.1f}"


def climbing_line(climb: ProxyClimb) -> str:
    """The report's first line when dense is still climbing."""
    measured = (f", and {_longer(climb)}, beyond one run's noise ({climb.longer_noise_pts:.1f})"
                if climb.longer_gain_pts is not None else "")
    longer = climb.longer_epochs if climb.longer_gain_pts is not None else 2 * climb.epochs
    return (f"dense is still climbing: {climb.rise_pts:+.1f} points over the last {climb.over_epochs} of its "
            f"{climb.epochs} epochs, more than the {climb.resolution_pts:.1f} points the search resolves{measured}; "
            f"rankings at this length may not hold; try --epochs {longer} or --epochs auto")


def length_holds_line(climb: ProxyClimb) -> str | None:
    """Why no warning, where dense rose more than the resolution at its schedule's end but a longer run
    gained less than one run's noise (None otherwise)."""
    if climb.still_learning or climb.longer_gain_pts is None or climb.rise_pts <= climb.resolution_pts:
        return None
    return (f"dense rose {climb.rise_pts:+.1f} points over the last {climb.over_epochs} of its {climb.epochs} epochs "
            f"(a schedule gains most as it decays), but {_longer(climb)}, within one run's noise "
            f"({climb.longer_noise_pts:.1f}): the proxy's length holds")
