"""Phase `trials`: the sampled trials, dense and the papers' settings first, under Ray Tune with an
Optuna sampler (search/searcher.py) and multi-objective ASHA (search/moasha.py); or, on resume, Ray's
restored experiment, or the run's records alone (unfinished trials train again from epoch 1)."""

from __future__ import annotations

import signal
import threading

from trilevel.core.errors import UserError
from trilevel.store.run_store import (
    MOASHA_STATE, OBJECTIVE_KEYS, TrialRecord, TrialStatus, finished_trial_ids, load_records, mark_lost_trials,
    settle_lost_trials,
)
from trilevel.reports.noise import run_sd

from ..old_names import earlier_module_names
from ..ray_compat import resume_failures_raise
from ..storage import StorageDown
from . import Context


def prepare(ctx: Context) -> None:
    """Before the first phase that trains: a resumed run's lost trials are marked, and the trainable
    is built knowing which trials a restored Tuner must not train again."""
    if ctx.opts.resume:
        mark_lost_trials(ctx.run_dir)
    ctx.trainable = ctx.make_trainable(finished_trial_ids(ctx.run_dir) if ctx.opts.resume else ())


def run(ctx: Context, extra: dict[int, float]) -> dict[str, TrialRecord]:
    """Run (or continue) the trials until the budget is spent or the search is stopped; returns
    every trial's latest record. `extra`: the dense seeds' accuracies, whose spread MO-ASHA treats
    as ties. Raises UserError when the dense baseline trial failed (no speedup can be measured)."""
    from ..searcher import reconcile_study

    opts, run_dir = ctx.opts, ctx.run_dir
    cost = OBJECTIVE_KEYS[opts.objective]
    why = _resume_from_ray(ctx)
    if why is not None:  # nothing of Ray's to continue, or it could not be: the run's records alone
        tuner, recorder = _fresh_tuner(ctx, extra, why)
        try:
            tuner.fit()
        except Exception:  # Tune's own reads of the storage fail when it stops answering
            ctx.check_storage()
            raise
        if recorder.storage_error is not None:
            raise StorageDown(ctx.storage.uri)
    settle_lost_trials(run_dir)
    reconcile_study(run_dir, run_dir.name, ["val_acc", cost])
    records = load_records(run_dir)
    failed = next((r for r in records.values() if r.is_baseline and r.status == TrialStatus.FAILED), None)
    if failed is not None:
        raise UserError(f"the dense baseline trial failed, so no speedup can be measured: {failed.error}")
    return records


def _resume_from_ray(ctx: Context) -> str | None:
    """Continue Ray's own experiment when a resume has one (checkpoints: cut trials continue where
    they stopped); None when it ran, else why the records alone must do. With --storage, a resume
    always continues from the records alone (search/storage.py says why)."""
    from ray import tune

    from ..moasha import MOASHAStateError

    if not (ctx.opts.resume and ctx.storage is None and tune.Tuner.can_restore(ctx.tune_root)):
        return f"no Ray experiment state in {ctx.tune_root}"
    sigint = signal.getsignal(signal.SIGINT)
    with earlier_module_names(), resume_failures_raise():
        try:
            # Ray's own resume failures become errors (it would log them and silently start the
            # experiment afresh, dropping the cut-off trials); the experiment state is read once
            # through Ray's public API first, so that much does not rest on Ray's log message.
            tune.ExperimentAnalysis(str(ctx.tune_root))
            tuner = tune.Tuner.restore(ctx.tune_root, trainable=ctx.trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
            tuner.fit()  # Ray reads the rest of its state (trials, searcher, callbacks) here
        except MOASHAStateError as exc:
            raise UserError(str(exc).splitlines()[0]) from None
        except Exception as exc:  # damaged, or pickled by another version of Ray or of this package
            _restore_sigint(sigint)
            ctx.check_storage()
            said = (str(exc).splitlines() or [""])[0][:160]
            return f"Ray's experiment state in {ctx.tune_root} cannot be resumed: {type(exc).__name__}" + (
                f": {said}" if said else "")
    return None


def _restore_sigint(handler) -> None:
    """Put back the SIGINT handler a failed Ray resume replaced (Tune installs its own when its run
    begins, and the next run would keep it as "the original"); only the main thread may."""
    if threading.current_thread() is threading.main_thread() and handler is not None:
        signal.signal(signal.SIGINT, handler)


def _fresh_tuner(ctx: Context, extra: dict[int, float], why: str):
    """A new Tuner over the run's records: an unfinished trial is sampled again and trains from
    its first epoch; finished ones are kept (the searcher and MO-ASHA read them back)."""
    from ray import tune

    from ..moasha import MOASHAScheduler, MOASHAStateError
    from ..recorder import RunRecorder
    from ..searcher import StudySearcher, requeue_unfinished

    opts, run_dir, info = ctx.opts, ctx.run_dir, ctx.info
    cost = OBJECTIVE_KEYS[opts.objective]
    requeued = requeue_unfinished(run_dir, run_dir.name, ctx.space.params) if opts.resume else []
    if requeued or (opts.resume and why.startswith("Ray's")):
        ctx.say(f"Resuming from the run's records alone ({why}): "
                f"{len(requeued)} unfinished trial(s) train again from their first epoch; finished ones are kept.")
    papers = info.papers
    recorder = RunRecorder(run_dir, opts.run.epochs, ctx.space.fixed, ctx.dense, papers, storage=ctx.storage)
    searcher = StudySearcher(
        space=dict(ctx.space.params), metric=["val_acc", cost], mode=["max", "min"],
        sampler=opts.sampler, seed=opts.seed, study_name=run_dir.name,
        points_to_evaluate=[ctx.dense, *papers.values()], max_epochs=opts.run.epochs, run_dir=str(run_dir),
        budget=opts.budget, snap=ctx.space.snap,
    )
    sd = run_sd(list(extra.values()), info.num_val)
    try:
        scheduler = MOASHAScheduler(
            objectives={"val_acc": "max", cost: "min"}, max_t=opts.run.epochs,
            grace_period=ctx.grace,
            reduction_factor=opts.reduction_factor, time_attr="epoch",
            state_path=str(run_dir / MOASHA_STATE), protected_config=[ctx.dense, *papers.values()],
            # accuracy differences within one run's spread (the dense seeds' sd, floored by the
            # validation set's binomial error) are ties, so noise does not decide who is stopped
            epsilon={"val_acc": sd} if sd > 0 else None,
        )
    except MOASHAStateError as exc:  # the rung state file itself is damaged or from another search
        raise UserError(str(exc).splitlines()[0]) from None
    scheduler.forget(r.trial_id for r in requeued)  # their rung results came from the lost runs
    tuner = tune.Tuner(
        ctx.trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=scheduler, num_samples=opts.budget,
            max_concurrent_trials=ctx.concurrency, reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=run_dir.name, storage_path=ctx.storage.uri if ctx.storage else str(run_dir.parent), verbose=0,
            callbacks=[recorder], stop=recorder,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    return tuner, recorder
