"""Phase `finalists`: the front's likely picks, and the papers' settings that learned, re-trained on
the dense baseline's extra seeds.

best.yaml is then chosen on accuracy averaged over the same seeds as dense (a paired comparison),
not on one lucky short run, and the report compares the pick with each paper's setting paired by
seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trilevel.store.run_store import TrialStatus, config_key, load_run
from trilevel.reports.noise import learned, paired_delta
from trilevel.reports.selection import choose_finalists
from trilevel.reports.summary import summarize

from . import Context


@dataclass(frozen=True)
class Finalists:
    """trial_id -> accuracies on the extra dense seeds, and trial_id -> the paired difference to dense
    ({delta_pts, delta_ci_pts: [low, high], pairs}, search.json's `finalist_deltas`)."""

    accs: dict[str, list[float]]
    deltas: dict[str, dict[str, Any]]


def run(ctx: Context) -> Finalists:
    """Re-train what is not re-trained yet (resume keeps the rest); a failed re-run leaves its
    finalist out, unverified, with a note; an interrupted phase saves the finished finalists and
    raises KeyboardInterrupt."""
    accs = _retrain(ctx)
    return Finalists(accs, _deltas(ctx, accs))


def _retrain(ctx: Context) -> dict[str, list[float]]:
    opts, info = ctx.opts, ctx.info
    done = dict(info.finalist_accs)
    seeds = ctx.extra_seeds
    if not opts.finalists or not seeds:
        return done
    summary = summarize(load_run(ctx.run_dir), opts.max_acc_drop)  # the front the report shows
    picks = choose_finalists(summary.front, summary.reference, opts.max_acc_drop, opts.objective, opts.finalists)
    threshold = info.chance_threshold
    picks += [t for t in summary.run.trials if t.paper and t.status == TrialStatus.COMPLETED and t not in picks
              and learned(t.val_acc, threshold)]
    searched = {t.trial_id: ctx.params(t) for t in picks if len(done.get(t.trial_id, [])) < len(seeds)}
    todo = {config_key(params): tid for tid, params in searched.items()}
    if not todo:
        return done
    ctx.say(f"Re-training {len(todo)} finalist(s) on seed(s) {', '.join(map(str, seeds))}: does the pick hold "
            "on the dense seeds?")
    points = [{**searched[tid], "seed": seed} for tid in todo.values() for seed in seeds]
    accs: dict[str, dict[int, float]] = {tid: {} for tid in todo.values()}
    failed: set[str] = set()
    for run in ctx.run_points(points, "finalist-seeds"):
        tid = todo[run.key]
        if run.error is not None:  # left out, unverified, with a note: the other finalists count
            failed.add(tid)
            ctx.say(f"a finalist re-run (trial {tid}'s configuration, seed {run.seed}) failed: {run.error[:200]}")
        elif run.finished(opts.run.epochs):  # an interrupted re-run is not a result
            accs[tid][run.seed] = run.report.val_acc
    for tid, by_seed in accs.items():
        if len(by_seed) == len(seeds):
            done[tid] = [by_seed[s] for s in seeds]
    if any(tid not in done and tid not in failed for tid in todo.values()):
        # Stopped (Ctrl-C / SIGTERM): the search stops here, and a resume re-trains only what is
        # missing (each finished run is in search.json's side_runs), never going on without them.
        ctx.record(finalist_accs=done)
        raise KeyboardInterrupt
    return done


def _deltas(ctx: Context, finalist_accs: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Per finalist: the paired difference to dense over the shared seeds, with its 90% interval."""
    trials = {t.trial_id: t for t in load_run(ctx.run_dir).trials}
    out = {}
    for tid, seed_accs in finalist_accs.items():
        trial = trials.get(tid)
        if trial is None or trial.val_acc is None:
            continue
        delta = paired_delta([trial.val_acc, *seed_accs], ctx.info.baseline_accs, ctx.info.num_val)
        if delta is not None:
            out[tid] = {"delta_pts": delta.delta_pts, "delta_ci_pts": list(delta.ci_pts), "pairs": delta.pairs}
    return out
