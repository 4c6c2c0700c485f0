"""Phase `train_shorter`: dense with its whole schedule compressed to `--train-shorter` fractions of
the epochs, on every dense seed (paired with dense and the finalists): would training shorter give
the same saving? The report puts the pick against this curve."""

from __future__ import annotations

import statistics

from trilevel.store.run_store import ShorterRun
from trilevel.reports.shorter import shorter_epochs

from . import Context


def run(ctx: Context) -> list[ShorterRun]:
    """Every length's runs, shortest first. A length already measured (resume) is kept; a length
    with a failed seed is left out, with a note; an interrupted phase saves the finished lengths and
    raises KeyboardInterrupt."""
    opts, info = ctx.opts, ctx.info
    lengths = shorter_epochs(opts.run.epochs, opts.train_shorter)
    seeds = ctx.all_seeds
    done = {r.epochs: r for r in info.train_shorter if len(r.accs) == len(seeds)}
    todo = [e for e in lengths if e not in done]
    if todo:
        ctx.say(f"Training dense for {', '.join(map(str, todo))} of {opts.run.epochs} epochs on {len(seeds)} "
                "seed(s): would training shorter do as well?")
        points = [{**ctx.dense, "seed": s, "epochs": e} for e in todo for s in seeds]
        runs: dict[int, dict[int, tuple[float, float]]] = {e: {} for e in todo}
        failed: set[int] = set()
        for run in ctx.run_points(points, "train-shorter", concurrency=ctx.concurrency):
            if run.error is not None:
                failed.add(run.epochs)
                ctx.say(f"a train-shorter run ({run.epochs} epochs, seed {run.seed}) failed: {run.error[:200]}")
            elif run.finished(run.epochs):
                runs[run.epochs][run.seed] = (run.report.val_acc, run.report.train_seconds)
        for e, by_seed in runs.items():
            if len(by_seed) == len(seeds):
                done[e] = ShorterRun(e, statistics.fmean(by_seed[s][1] for s in seeds), [by_seed[s][0] for s in seeds])
        if any(e not in done and e not in failed for e in todo):  # stopped (Ctrl-C): resume measures the rest
            ctx.record(train_shorter=[done[e] for e in sorted(done)])
            raise KeyboardInterrupt
    return [done[e] for e in sorted(done)]
