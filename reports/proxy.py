"""What the report says about the proxy's length: how `--epochs auto` chose it (search/epochs_auto.py)
and, whatever chose it, whether dense was still climbing at its end (reports/noise.py `proxy_climb`).
One line each, shared by the search's progress notes, the live view and the report."""

from __future__ import annotations

from trilevel.store.run_store import EpochsAuto, ProxyClimb

from .noise import one_run_noise_pts


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


def climbing_line(climb: ProxyClimb) -> str:
    """The report's first line when dense is still climbing."""
    return (f"dense is still climbing: {climb.rise_pts:+.1f} points over the last {climb.over_epochs} of its "
            f"{climb.epochs} epochs, more than the {climb.resolution_pts:.1f} points the search resolves; rankings "
            f"at this length may not hold; try --epochs {2 * climb.epochs} or --epochs auto")
