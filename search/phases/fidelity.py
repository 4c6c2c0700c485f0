"""Phase `fidelity`: dense, the pick and its nearest rivals (the finalists) trained `--fidelity` x
the epochs on the search's seed: does the ranking the search made on short runs survive longer
training?"""

from __future__ import annotations

from trilevel.store.run_store import FidelityCheck, FidelityRun, config_key, load_run
from trilevel.reports.selection import choose_finalists
from trilevel.reports.summary import summarize

from . import Context


def run(ctx: Context) -> FidelityCheck | None:
    """The check's runs, or the reason it was skipped: no pick, turned off, or it would cost more
    than `fidelity_max_share` of the training time the trials took. Runs already measured are kept
    (resume); an interrupted check saves the finished runs and raises KeyboardInterrupt."""
    opts, info = ctx.opts, ctx.info
    if not opts.fidelity:  # a check already recorded stays (off for this resume); else the report says it is off
        return info.fidelity or FidelityCheck(0.0, 0, opts.run.seed, skipped="turned off (--fidelity off)")
    epochs = max(opts.run.epochs + 1, round(opts.fidelity * opts.run.epochs))
    check = FidelityCheck(opts.fidelity, epochs, opts.run.seed)
    summary = summarize(load_run(ctx.run_dir), opts.max_acc_drop)
    base, pick = summary.run.baseline, summary.best
    if base is None:
        check.skipped = "no finished dense trial to compare with"
        return check
    if pick is None or pick.is_baseline:
        check.skipped = "no pick to check (the search recommends no pruned configuration)"
        return check
    rivals = [t for t in summary.front if t.seed_accs and not t.is_baseline] or choose_finalists(
        summary.front, summary.reference, opts.max_acc_drop, opts.objective, max(opts.finalists, 2))
    configs = [base, *([pick] if pick not in rivals else []), *rivals]
    wanted = {t.trial_id for t in configs}
    old = info.fidelity  # runs measured before (resume) count only for the configurations checked now
    if old is not None and (old.epochs, old.seed) == (epochs, opts.run.seed):
        check.runs = [r for r in old.runs if r.trial_id in wanted]
    spent = sum(t.train_seconds or 0.0 for t in summary.run.trials)
    cost = sum(t.projected_seconds or 0.0 for t in configs) * epochs / opts.run.epochs
    if not check.runs and spent and cost > opts.fidelity_max_share * spent:
        check.skipped = (f"it would take about {cost:.0f} s of training, {cost / spent:.0%} of the {spent:.0f} s the "
                         f"trials took (limit {opts.fidelity_max_share:.0%}, --fidelity-max-share)")
        ctx.say(f"Fidelity check skipped: {check.skipped}.")
        return check
    done = {r.trial_id for r in check.runs}
    todo = {config_key(ctx.params(t)): t for t in configs if t.trial_id not in done}
    if not todo:
        return check
    ctx.say(f"Fidelity check: dense and {len(configs) - 1} front configuration(s) for {epochs} epochs "
            f"({opts.fidelity:g}x) on seed {opts.run.seed}: does the ranking hold with longer training?")
    points = [{**ctx.params(t), "seed": opts.run.seed, "epochs": epochs} for t in todo.values()]
    failed: set[str] = set()
    for run in ctx.run_points(points, "fidelity", concurrency=ctx.concurrency):
        trial = todo[run.key]
        if run.error is not None:  # left out, with a note: the check covers the others
            failed.add(trial.trial_id)
            ctx.say(f"a fidelity run (trial {trial.trial_id}'s configuration) failed: {run.error[:200]}")
        elif run.finished(epochs):
            search_acc = summary.reference.acc if trial.is_baseline else trial.mean_acc
            check.runs.append(FidelityRun(trial.trial_id, search_acc, run.report.val_acc, run.report.train_seconds))
    if wanted - {r.trial_id for r in check.runs} - failed:  # stopped (Ctrl-C): resume trains the rest
        ctx.record(fidelity=check)
        raise KeyboardInterrupt
    return check
