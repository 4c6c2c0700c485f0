"""Phase `dense_seeds`: dense on the extra seeds (seed+1 .. seed+baseline_seeds-1), before any
sampled trial: is there anything to rank (the validity check), and how large is the seed noise?
The search's own dense trial (on `seed`) is the first seed; it trains with the trials."""

from __future__ import annotations

from trilevel.core.errors import UserError
from trilevel.reports.noise import Validity, check_learned, resolution_pts

from . import Context, NotLearned


def run(ctx: Context) -> dict[int, float]:
    """seed -> dense accuracy on each extra seed. Records them (and the data's sizes and chance
    level) in search.json; raises `NotLearned` when dense did not learn, KeyboardInterrupt when
    stopped before every seed finished (a resume trains only the missing ones)."""
    info, opts = ctx.info, ctx.opts
    if info.learned is False:  # a resumed search already judged
        raise NotLearned(Validity.from_dict(info.validity))
    seeds = ctx.extra_seeds
    if len(info.baseline_accs) >= opts.baseline_seeds:  # a search from before this order
        return dict(zip(seeds, info.baseline_accs[1:]))
    done = {int(k): v for k, v in info.dense_seed_accs.items()}
    todo = [s for s in seeds if s not in done]
    if todo:
        ctx.say(f"Training dense on seed(s) {', '.join(map(str, todo))} first: is there anything to rank, "
                "and how large is the seed noise?")
        for run in ctx.run_points([{**ctx.dense, "seed": seed} for seed in todo], "baseline-seeds"):
            if run.finished(opts.run.epochs):
                done[run.seed] = run.report.val_acc
                ctx.note_data(run.report)
            elif run.error is not None:
                raise UserError(f"a dense baseline seed failed, so no noise level can be measured: {run.error[:300]}")
        ctx.record(dense_seed_accs={str(k): v for k, v in sorted(done.items())})
        if any(s not in done for s in todo):  # Ctrl-C / SIGTERM stopped the Tuner: resume later
            raise KeyboardInterrupt
    extra = {s: done[s] for s in seeds if s in done}
    if extra:
        verdict = check_learned(list(extra.values()), ctx.info.chance_acc)  # as the runs measured it
        record_noise(ctx, verdict)
        if not verdict.learned:
            raise NotLearned(verdict)
        _say_noise(ctx, verdict)
    return extra


def record_noise(ctx: Context, verdict: Validity) -> None:
    """Validity and resolution into search.json (the report and the next resume read them)."""
    accs = ctx.info.baseline_accs or list(ctx.info.dense_seed_accs.values())
    ctx.record(validity=verdict.to_dict(),
               resolution_pts=resolution_pts(accs, ctx.info.num_val, n=ctx.opts.baseline_seeds))


def _say_noise(ctx: Context, verdict: Validity) -> None:
    """One line when the trial phase starts: dense over the extra seeds and what can be resolved."""
    ctx.say(f"Dense on {verdict.seeds} extra seed(s): {100 * verdict.mean:.1f}% (sd {100 * verdict.sd:.1f} pts, "
            f"chance {100 * verdict.chance:.1f}%). With {ctx.opts.baseline_seeds} seeds, accuracy differences under "
            f"{ctx.info.resolution_pts:.1f} points cannot be told from noise (90%; estimated from {verdict.seeds} "
            "seed(s), the report recomputes it once the search's own dense trial is in).")
