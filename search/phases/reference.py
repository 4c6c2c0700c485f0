"""Phase `reference`: once the trials are in, dense over every seed (the search's own dense trial
first, then the extra seeds in seed order) is the reference everything is compared with: the validity
check again, the resolution, and whether dense was still climbing at the proxy's end."""

from __future__ import annotations

from trilevel.store.run_store import TrialRecord, TrialStatus
from trilevel.reports.noise import check_learned, dense_climb
from trilevel.reports.proxy import checked_climb, climbing_line, length_holds_line

from . import Context, NotLearned
from .dense_seeds import record_noise


def run(ctx: Context, extra: dict[int, float], records: dict[str, TrialRecord]) -> None:
    """Record the dense reference in search.json; raises `NotLearned` when dense did not learn."""
    info = ctx.info
    base = _dense(records)
    if base is not None and len(info.baseline_accs) < 1 + len(extra):
        ctx.stage(baseline_accs=[base.val_acc, *extra.values()],
                  chance_acc=info.chance_acc if info.chance_acc is not None else base.chance_acc,
                  num_val=info.num_val if info.num_val is not None else base.num_val)
    info = ctx.info
    if not info.baseline_accs or info.chance_acc is None:
        return
    verdict = check_learned(info.baseline_accs, info.chance_acc)
    record_noise(ctx, verdict)
    if not verdict.learned:
        raise NotLearned(verdict)
    check_climb(ctx, records)


def check_climb(ctx: Context, records: dict[str, TrialRecord]) -> None:
    """Is dense still climbing at the proxy's end? Recorded in search.json (`proxy_still_learning`),
    said when the verdict is new. Run again after the fidelity check: its dense, trained longer on
    the same seed, settles the question (reports/noise.py `settle_climb`)."""
    base = _dense(records)
    before = ctx.info.proxy_still_learning
    climb = checked_climb(dense_climb(base, ctx.info.resolution_pts) or before, ctx.info, base)
    ctx.record(proxy_still_learning=climb)
    if climb is None or climb == before:
        return
    if climb.still_learning:
        ctx.say(climbing_line(climb))
    elif (settled := length_holds_line(climb)) is not None:
        ctx.say(settled)


def _dense(records: dict[str, TrialRecord]) -> TrialRecord | None:
    return next((r for r in records.values() if r.is_baseline and r.status == TrialStatus.COMPLETED), None)
