"""Run a search: Ray Tune + Optuna sampler + MO-ASHA over a search space, into one run directory.

Flow: options -> validated base RunConfig and space -> preflight (the model builds) -> run
directory (search.json) -> Ray (the caller's, or our own: local, quiet, loopback; or `--address`)
-> dense on the extra seeds first (validity check: stop as `not_learned` when dense did not learn;
the noise level) -> Tuner (or Tuner.restore on resume) -> validity over every dense seed ->
finalists re-trained on the same seeds, with paired intervals -> exports (pareto.json, best.yaml,
plot) -> a `SearchResult`. Exit codes, signals and the terminal report belong to the CLI.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trilevel.core.atomic import ensure_writable
from trilevel.core.config import RunConfig
from trilevel.core.data import dataset_info
from trilevel.core.errors import UserError
from trilevel.core.run_store import (
    COMPLETED, FAILED, MOASHA_STATE, CurvePoint, EpochsAuto, NOT_LEARNED, OBJECTIVE_KEYS, SEARCH_FAILED, SEARCH_FILE,
    SEARCH_FINISHED, SEARCH_INTERRUPTED, SEARCH_RUNNING, FidelityCheck, FidelityRun, SearchInfo, ShorterRun,
    config_key, finished_trial_ids, load_records,
    mark_lost_trials, read_search, settle_lost_trials, write_search,
)
from trilevel.reports.noise import (
    Validity, check_learned, learned, dense_climb, paired_delta, resolution_pts, run_sd,
)
from trilevel.reports.proxy import climbing_line, describe_epochs_auto
from trilevel.spaces import SearchSpace

from .constants import EPOCHS_AUTO
from .cluster import init_ray, trial_resources
from .lock import RunLock
from .side import run_points
from .options import SearchOptions, auto_grace  # noqa: F401 (auto_grace: re-exported)


@dataclass
class SearchResult:
    """What a search returns to Python: where it wrote, how it ended, and what it found.

    `status` is `finished`, `interrupted` (Ctrl-C; continue with `resume=True`) or `not_learned`
    (dense did not learn: nothing ranked or exported; `explanation` says what to change).
    `summary` holds the front, the dense reference and the pick (None when nothing was recorded).
    """

    run_dir: Path
    status: str
    summary: Any = None  # trilevel.reports.Summary
    validity: Validity | None = None
    explanation: str | None = None

    @property
    def front(self) -> list:
        return list(self.summary.front) if self.summary is not None else []

    @property
    def pick(self):
        """The sparse `TrialRecord` the pick rule chose (see `summary.selection` for why), or None.
        When it is below the train-shorter curve, what is recommended is `instead` (best.yaml)."""
        return self.summary.best if self.summary is not None else None

    @property
    def instead(self):
        """The measured dense-shorter run (`ShorterRun`) recommended in place of the pick, or None."""
        return self.summary.instead if self.summary is not None else None

    @property
    def best_config(self) -> RunConfig | None:
        """What best.yaml holds: the pick as a full run config, or dense at the shorter length when
        `instead` is set; None when nothing is recommended."""
        return self.summary.best_run_config() if self.summary is not None else None


def preflight(run: RunConfig) -> None:
    """Build and patch the model once up front (with its starting weights, so an unreadable
    checkpoint or unreachable hub fails too), so a model the trials cannot use fails here in one
    line rather than in every trial."""
    from trilevel.core.models import build_model, default_patch_size
    from trilevel.core.patch import sparsify

    info = dataset_info(run.dataset, run.data)
    img = run.img_size or info.default_img_size
    model = build_model(run.model, num_classes=info.num_classes, img_size=img, in_chans=info.in_chans,
                        patch_size=run.patch_size or default_patch_size(img), pretrained=run.pretrained,
                        initial_checkpoint=run.initial_checkpoint, **run.model_kwargs)
    sparsify(model, run.sparsity)


def run_search(opts: SearchOptions, *, echo: Callable[[str], None] | None = None,
               on_ray_started: Callable[[], None] | None = None) -> SearchResult:
    """Run (or, with `opts.resume`, continue) a search and return what it found.

    Works inside an already-initialised Ray (`ray.init()` by the caller: this search neither
    starts nor shuts it down, and `opts.address` is not used); otherwise it starts its own (local,
    or `opts.address`), calls `on_ray_started()` right after (the CLI routes SIGTERM there, since
    `ray.init` installs its own handler) and shuts it down at the end. It installs no signal handler
    and prints nothing but `echo(line)` progress notes (None: silent) and the live view
    (`opts.live`); Ctrl-C ends it with status `interrupted`, resumable. Raises `UserError` for bad
    options, before Ray starts.
    """
    say = echo or (lambda line: None)
    space = opts.validate()
    grace = opts.grace(space)
    preflight(opts.run)
    run_dir = opts.run_dir.resolve()
    lock = RunLock(run_dir)  # one driver per run: a second one gets a line naming the first
    if opts.resume and run_dir.is_dir():
        lock.acquire(say)  # before search.json is touched
    try:
        info = _prepare_run_dir(opts, space, grace, run_dir)
        lock.acquire(say)  # a new search's directory exists now (no-op when held)
        return _search(opts, space, grace, run_dir, info, say, on_ray_started)
    finally:
        lock.release()


def _search(opts: SearchOptions, space: SearchSpace, grace: int, run_dir: Path, info: SearchInfo, say,
            on_ray_started) -> SearchResult:
    """`run_search` once the run directory is prepared and locked."""
    from .ray_compat import quiet_env

    quiet_env()  # before `import ray`
    import ray

    owns_ray = not ray.is_initialized()
    from ray import tune

    from trilevel.reports import LiveProgress, write_outputs
    from trilevel.reports.summary import remove_best

    from .moasha import MOASHAScheduler, MOASHAStateError
    from .recorder import RunRecorder, attach_live_view
    from .searcher import StudySearcher, reconcile_study, requeue_unfinished
    from .trainable import run_trial

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.time()  # wall time includes Ray start-up: it is part of what the search costs
    if owns_ray:
        init_ray(opts)
        if on_ray_started is not None:
            on_ray_started()
    interrupted = succeeded = False
    not_learned = None
    live = None
    try:
        resources = trial_resources(opts, ray.cluster_resources())
        cluster = ray.cluster_resources()
        slots = cluster.get("CPU", 1) // opts.cpus_per_trial
        if opts.gpus_per_trial:
            slots = min(slots, cluster.get("GPU", 0) // opts.gpus_per_trial)
        concurrency = opts.concurrency or max(1, int(slots))
        dense = space.dense_point()
        if opts.epochs_auto:  # the trials' length first: everything after trains at it
            opts = _choose_epochs(opts, space, run_dir, info, resources, dense, say)
            grace = opts.grace(space)
            info.epochs, info.grace_epochs, info.run_config = opts.run.epochs, grace, opts.run
            write_search(run_dir, info)
        base = opts.run.to_dict()
        if not opts.resume:  # a resumed search keeps what it enqueued when it started
            info.papers = dict(space.paper_points()) if opts.papers == "first" else {}
            write_search(run_dir, info)
        papers = info.papers
        if opts.resume:
            mark_lost_trials(run_dir)
        restorable = opts.resume and tune.Tuner.can_restore(str(run_dir))
        requeued = []
        if opts.resume and not restorable:  # the records alone: unfinished trials train again
            requeued = requeue_unfinished(run_dir, run_dir.name, space.params)
            if requeued:
                say(f"Resuming from the run's records alone (no Ray experiment state in {run_dir}): "
                    f"{len(requeued)} unfinished trial(s) train again from their first epoch; finished ones are kept.")
        finished = finished_trial_ids(run_dir) if opts.resume else ()
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, base=base, fixed=dict(space.fixed), finished=finished), resources
        )
        # Dense first, on the extra seeds: before any budget is spent, is there anything to rank,
        # and how large is the noise?
        extra = _dense_seeds(opts, run_dir, info, trainable, dense, say)
        if info.learned is False:  # a resumed search already judged
            raise _NotLearned(Validity.from_dict(info.validity))
        if extra:
            verdict = check_learned(list(extra.values()), info.chance_acc)
            _print_noise(info, verdict, opts, say)
            if not verdict.learned:
                raise _NotLearned(verdict)
        live = LiveProgress(
            opts.budget, opts.max_acc_drop, objective=opts.objective,
            baseline_accs=info.baseline_accs or list(extra.values()) or None,
            note=describe_epochs_auto(info.epochs_auto) if info.epochs_auto is not None else None,
        ) if opts.live else None
        attach_live_view(run_dir, live)
        if live is not None:
            live.start()
            for record in load_records(run_dir).values():
                live.update(record)
        cost = OBJECTIVE_KEYS[opts.objective]
        if restorable:
            try:
                tuner = tune.Tuner.restore(
                    str(run_dir), trainable=trainable, resume_unfinished=True, resume_errored=False,
                    restart_errored=False,
                )
            except MOASHAStateError as exc:
                raise UserError(str(exc).splitlines()[0]) from None
        else:
            recorder = RunRecorder(run_dir, opts.run.epochs, space.fixed, dense, papers)
            searcher = StudySearcher(
                space=dict(space.params), metric=["val_acc", cost], mode=["max", "min"],
                sampler=opts.sampler, seed=opts.seed, study_name=run_dir.name,
                points_to_evaluate=[dense, *papers.values()], max_epochs=opts.run.epochs, run_dir=str(run_dir),
                budget=opts.budget, snap=space.snap,
            )
            scheduler = MOASHAScheduler(
                objectives={"val_acc": "max", cost: "min"}, max_t=opts.run.epochs,
                grace_period=grace, reduction_factor=opts.reduction_factor, time_attr="epoch",
                state_path=str(run_dir / MOASHA_STATE), protected_config=[dense, *papers.values()],
                epsilon=_rung_epsilon(info, extra),
            )
            scheduler.forget(r.trial_id for r in requeued)  # their rung results came from the lost runs
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=searcher, scheduler=scheduler, num_samples=opts.budget,
                    max_concurrent_trials=concurrency, reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name=run_dir.name, storage_path=str(run_dir.parent), verbose=0,
                    callbacks=[recorder], stop=recorder,
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                    failure_config=tune.FailureConfig(max_failures=1),
                ),
            )
        tuner.fit()
        settle_lost_trials(run_dir)
        reconcile_study(run_dir, run_dir.name, ["val_acc", cost])
        records = load_records(run_dir)
        failed_base = next((r for r in records.values() if r.is_baseline and r.status == FAILED), None)
        if failed_base is not None:
            raise UserError(f"the dense baseline trial failed, so no speedup can be measured: {failed_base.error}")
        base_trial = next((r for r in records.values() if r.is_baseline and r.status == COMPLETED), None)
        if base_trial is not None and len(info.baseline_accs) < 1 + len(extra):
            # The search's own dense trial is the first seed; the extra seeds follow in seed order.
            info.baseline_accs = [base_trial.val_acc, *extra.values()]
            info.chance_acc = info.chance_acc if info.chance_acc is not None else base_trial.chance_acc
            info.num_val = info.num_val if info.num_val is not None else base_trial.num_val
        if info.baseline_accs and info.chance_acc is not None:
            verdict = check_learned(info.baseline_accs, info.chance_acc)
            _record_noise(info, verdict, opts)
            if not verdict.learned:
                raise _NotLearned(verdict)
            info.proxy_still_learning = dense_climb(base_trial, info.resolution_pts) or info.proxy_still_learning
            if info.proxy_still_learning is not None and info.proxy_still_learning.still_learning:
                say(climbing_line(info.proxy_still_learning))
        done = sum(r.finished for r in records.values())
        interrupted = done < opts.budget
        if not interrupted:
            write_search(run_dir, info)  # the finalists are chosen against this dense reference
            info.train_shorter = _train_shorter(opts, run_dir, info, trainable, dense, concurrency, say)
            write_search(run_dir, info)
            info.finalist_accs = _finalist_seeds(opts, run_dir, info, trainable, space)
            info.finalist_deltas = _finalist_deltas(run_dir, info)
            write_search(run_dir, info)  # the fidelity check starts from this pick
            info.fidelity = _fidelity_check(opts, run_dir, info, trainable, space, concurrency, say)
        succeeded = True
    except _NotLearned as exc:
        not_learned = exc.verdict
        succeeded = True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if live is not None:
            live.stop()
        info.wall_seconds = (info.wall_seconds or 0.0) + time.time() - started
        info.status = SEARCH_INTERRUPTED if interrupted else (SEARCH_FINISHED if succeeded else SEARCH_FAILED)
        if not_learned is not None:
            info.status = NOT_LEARNED
            info.validity = not_learned.to_dict()
        info.finished = _now() if succeeded and not interrupted else None
        write_search(run_dir, info)
        if owns_ray:
            ray.shutdown()
    if not_learned is not None:
        remove_best(run_dir)  # from an earlier report of an interrupted run: nothing backs it now
        return SearchResult(run_dir, NOT_LEARNED, validity=not_learned,
                            explanation=not_learned.explanation(opts.run.epochs, info.num_train, info.num_val))
    if interrupted and not load_records(run_dir):  # stopped while dense trained its extra seeds
        return SearchResult(run_dir, SEARCH_INTERRUPTED)
    if info.status == SEARCH_FINISHED and not opts.keep_checkpoints:
        freed = drop_checkpoints(run_dir)
        if freed:
            size = f"{freed / 1e9:.1f} GB" if freed >= 1e9 else f"{freed / 1e6:.0f} MB"
            say(f"Removed {size} of training checkpoints: they only serve an unfinished search's "
                "resume (--keep-checkpoints keeps them).")
    summary = write_outputs(run_dir, opts.max_acc_drop)
    return SearchResult(run_dir, SEARCH_INTERRUPTED if interrupted else SEARCH_FINISHED, summary=summary)


def drop_checkpoints(run_dir: Path) -> int:
    """Delete every training checkpoint (Ray's `checkpoint_*` folders) under a finished search's
    directory and return the bytes freed. They exist so that an interrupted or crashed trial resumes
    where it stopped; once every trial and phase has finished, nothing reads them again (a resume of a
    finished search restores no finished trial, and its extra phases train from scratch), while they
    take ~120 MB per deit_t trial: 12 GB for the default main command. Results, logs, the Optuna
    journal and Ray's experiment state stay."""
    freed = 0
    for folder in sorted(run_dir.glob("**/checkpoint_*")):
        if folder.is_dir():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return freed


# -- run directory ---------------------------------------------------------------------------------
def _prepare_run_dir(opts: SearchOptions, space: SearchSpace, grace: int, run_dir: Path) -> SearchInfo:
    """Create search.json, or on resume check that the stored run is the same search."""
    meta_path = run_dir / SEARCH_FILE
    identity = {
        "model": opts.run.model, "dataset": opts.run.dataset, "space": space.describe(),
        "epochs": f"{EPOCHS_AUTO} (max {opts.max_epochs})" if opts.epochs_auto else opts.run.epochs,
        "budget": opts.budget, "objective": opts.objective, "sampler": opts.sampler_name,
    }
    if opts.resume:
        if not meta_path.exists():
            raise UserError(f"nothing to resume: no search in {run_dir}")
        try:
            raw = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise UserError(f"cannot resume: {meta_path} is corrupt") from None
        old_run, new_run = raw.get("run_config") or {}, opts.run.to_dict()
        if "recipe" not in old_run:
            raise UserError(f"cannot resume {run_dir}: it was made by an earlier trilevel-search (before named "
                            "recipes); its finished results stay readable with trilevel-report, start a new search")
        info = read_search(run_dir)
        epochs = (f"{EPOCHS_AUTO} (max {info.epochs_auto.max_epochs})" if info.epochs_auto is not None
                  else info.epochs)
        stored = {"model": info.model, "dataset": info.dataset, "space": info.space_spec, "epochs": epochs,
                  "budget": info.budget, "objective": info.objective, "sampler": info.sampler}
        diffs = [f"{k} {stored[k]!r} -> {identity[k]!r}" if k != "space" else "space"
                 for k in identity if stored[k] != identity[k]]
        diffs += [f"{k} {old_run.get(k)!r} -> {new_run[k]!r}" for k in new_run
                  if k not in ("model", "dataset", "epochs", "device", "workers", "output")
                  and old_run.get(k) != new_run[k]]
        if diffs:
            raise UserError(f"cannot resume {run_dir}: it was a different search ({'; '.join(diffs)})")
        info.status = SEARCH_RUNNING
        info.full_epochs = opts.full_epochs  # plans only the full training: a resume may change it
        write_search(run_dir, info)
        return info
    if meta_path.exists():
        raise UserError(f"{run_dir} already holds a search; add --resume to continue it or pick another --name")
    ensure_writable(run_dir)
    info = SearchInfo(
        name=run_dir.name, model=opts.run.model, dataset=opts.run.dataset, space=space.name,
        objective=opts.objective, sampler=opts.sampler_name, budget=opts.budget,
        epochs=0 if opts.epochs_auto else opts.run.epochs,  # 0: --epochs auto has not chosen yet
        grace_epochs=grace, reduction_factor=opts.reduction_factor, max_acc_drop=opts.max_acc_drop,
        seed=opts.seed, command=opts.command, started=_now(), finished=None, wall_seconds=None,
        status=SEARCH_RUNNING, run_config=opts.run, baseline_accs=[], varied=sorted(space.params),
        space_spec=space.describe(), finalists=opts.finalists, full_epochs=opts.full_epochs,
        epochs_auto=EpochsAuto(opts.max_epochs, opts.run.seed) if opts.epochs_auto else None,
    )
    write_search(run_dir, info)
    return info


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class _NotLearned(Exception):
    """Dense did not learn in the proxy: nothing may be ranked or exported."""

    def __init__(self, verdict: Validity):
        super().__init__("dense did not learn")
        self.verdict = verdict


def _choose_epochs(opts: SearchOptions, space: SearchSpace, run_dir: Path, info: SearchInfo, resources,
                   dense: dict, say) -> SearchOptions:
    """`--epochs auto`: dense's curve at doubling lengths on the search's seed (search/epochs_auto.py),
    each length recorded in search.json as it finishes; returns the options with the chosen epochs."""
    from ray import tune

    from . import epochs_auto
    from .trainable import run_trial

    record = info.epochs_auto
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=opts.run.to_dict(), fixed=dict(space.fixed), finished=()), resources)

    def measure(epochs: int) -> tuple[CurvePoint, float | None, int | None]:
        [run] = run_points(trainable, [{**dense, "seed": record.seed, "epochs": epochs}], f"epochs-auto-{epochs}",
                           run_dir)
        if run.error is not None:
            raise UserError(f"dense failed while --epochs auto trained it for {epochs} epochs: {run.error[:300]}")
        if not run.finished(epochs):  # stopped (Ctrl-C): resume later
            raise KeyboardInterrupt
        _note_data(info, run.report)
        return CurvePoint(epochs, run.report.val_acc, run.report.train_seconds), run.report.chance_acc, \
            run.report.num_val

    def save(_: EpochsAuto) -> None:
        write_search(run_dir, info)

    epochs_auto.run(record, measure, save, say)
    return dataclasses.replace(opts, run=opts.run.replace(epochs=record.chosen))


def _dense_seeds(opts, run_dir: Path, info: SearchInfo, trainable, dense: dict, say) -> dict[int, float]:
    """Dense accuracy on the extra seeds (seed+1 .. seed+baseline_seeds-1), trained before the
    sampled trials: the validity check and the noise level need them first. The search's own dense
    trial (on `seed`) is the first seed. Records chance_acc, num_train and num_val in `info`."""
    seeds = [opts.run.seed + 1 + i for i in range(opts.baseline_seeds - 1)]
    done = {int(k): v for k, v in info.dense_seed_accs.items()}
    if len(info.baseline_accs) >= opts.baseline_seeds:  # a search from before this order
        return dict(zip(seeds, info.baseline_accs[1:]))
    todo = [s for s in seeds if s not in done]
    if todo:
        say(f"Training dense on seed(s) {', '.join(map(str, todo))} first: is there anything to rank, "
            "and how large is the seed noise?")
        for run in run_points(trainable, [{**dense, "seed": seed} for seed in todo], "baseline-seeds", run_dir):
            if run.finished(opts.run.epochs):
                done[run.seed] = run.report.val_acc
                _note_data(info, run.report)
            elif run.error is not None:
                raise UserError(f"a dense baseline seed failed, so no noise level can be measured: {run.error[:300]}")
        info.dense_seed_accs = {str(k): v for k, v in sorted(done.items())}
        write_search(run_dir, info)
        if any(s not in done for s in todo):  # Ctrl-C / SIGTERM stopped the Tuner: resume later
            raise KeyboardInterrupt
    return {s: done[s] for s in seeds if s in done}


def _train_shorter(opts, run_dir: Path, info: SearchInfo, trainable, dense: dict, concurrency: int,
                   say) -> list[ShorterRun]:
    """Dense with its whole schedule compressed to `opts.train_shorter` fractions of the epochs, on
    every dense seed (the search's seed and the extra ones: paired with dense and the finalists).
    A length already measured (resume) is kept; an interrupted phase raises KeyboardInterrupt."""
    from trilevel.reports.shorter import shorter_epochs

    lengths = shorter_epochs(opts.run.epochs, opts.train_shorter)
    seeds = [opts.run.seed + i for i in range(opts.baseline_seeds)]
    done = {r.epochs: r for r in info.train_shorter if len(r.accs) == len(seeds)}
    todo = [e for e in lengths if e not in done]
    if todo:
        say(f"Training dense for {', '.join(map(str, todo))} of {opts.run.epochs} epochs on {len(seeds)} seed(s): "
            "would training shorter do as well?")
        points = [{**dense, "seed": s, "epochs": e} for e in todo for s in seeds]
        runs: dict[int, dict[int, tuple[float, float]]] = {e: {} for e in todo}
        failed: set[int] = set()
        for run in run_points(trainable, points, "train-shorter", run_dir, concurrency):
            if run.error is not None:  # a length with a failed seed is left out, with a note
                failed.add(run.epochs)
                say(f"a train-shorter run ({run.epochs} epochs, seed {run.seed}) failed: {run.error[:200]}")
            elif run.finished(run.epochs):
                runs[run.epochs][run.seed] = (run.report.val_acc, run.report.train_seconds)
        for e, by_seed in runs.items():
            if len(by_seed) == len(seeds):
                done[e] = ShorterRun(e, statistics.fmean(by_seed[s][1] for s in seeds), [by_seed[s][0] for s in seeds])
        if any(e not in done and e not in failed for e in todo):  # stopped (Ctrl-C): resume measures the rest
            info.train_shorter = [done[e] for e in sorted(done)]
            write_search(run_dir, info)
            raise KeyboardInterrupt
    return [done[e] for e in sorted(done)]


def _rung_epsilon(info: SearchInfo, extra: dict[int, float]) -> dict[str, float] | None:
    """MO-ASHA treats accuracy differences within one run's spread (the dense seeds' sd, floored
    by the validation set's binomial error) as ties, so noise does not decide who is stopped."""
    sd = run_sd(list(extra.values()), info.num_val)
    return {"val_acc": sd} if sd > 0 else None


def _record_noise(info: SearchInfo, verdict: Validity, opts) -> None:
    """Validity and resolution into search.json (the report and the next resume read them)."""
    info.validity = verdict.to_dict()
    accs = info.baseline_accs or list(info.dense_seed_accs.values())
    info.resolution_pts = resolution_pts(accs, info.num_val, n=opts.baseline_seeds)


def _print_noise(info: SearchInfo, verdict: Validity, opts, say) -> None:
    """One line when the trial phase starts: dense over the extra seeds and what can be resolved."""
    _record_noise(info, verdict, opts)
    if not verdict.learned:
        return
    res = info.resolution_pts
    say(f"Dense on {verdict.seeds} extra seed(s): {100 * verdict.mean:.1f}% (sd {100 * verdict.sd:.1f} pts, "
        f"chance {100 * verdict.chance:.1f}%). With {opts.baseline_seeds} seeds, accuracy differences under "
        f"{res:.1f} points cannot be told from noise (90%; estimated from {verdict.seeds} seed(s), the report "
        f"recomputes it once the search's own dense trial is in).")


def _finalist_deltas(run_dir: Path, info: SearchInfo) -> dict[str, dict]:
    """Per finalist: the paired difference to dense over the shared seeds, with its 90% interval."""
    from trilevel.core.run_store import load_run

    trials = {t.trial_id: t for t in load_run(run_dir).trials}
    out = {}
    for tid, seed_accs in info.finalist_accs.items():
        trial = trials.get(tid)
        if trial is None or trial.val_acc is None:
            continue
        delta = paired_delta([trial.val_acc, *seed_accs], info.baseline_accs, info.num_val)
        if delta is not None:
            out[tid] = {"delta_pts": delta.delta_pts, "delta_ci_pts": list(delta.ci_pts), "pairs": delta.pairs}
    return out


def _finalist_seeds(opts, run_dir: Path, info: SearchInfo, trainable, space: SearchSpace) -> dict[str, list[float]]:
    """Re-train the front's likely picks, and the papers' settings that learned, on the dense
    baseline's extra seeds.

    best.yaml is then chosen on accuracy averaged over the same seeds as dense (a paired
    comparison), not on one lucky short run, and the report compares the pick with each paper's
    setting paired by seed. Returns trial_id -> accuracies on those seeds.
    """
    from trilevel.core.run_store import load_run
    from trilevel.reports.selection import choose_finalists
    from trilevel.reports.summary import summarize

    done = dict(info.finalist_accs)
    seeds = [opts.run.seed + 1 + i for i in range(opts.baseline_seeds - 1)]  # as _dense_seeds
    if not opts.finalists or not seeds:
        return done
    summary = summarize(load_run(run_dir), opts.max_acc_drop)  # the front the report shows: no chance-level trial
    picks = choose_finalists(summary.front, summary.reference, opts.max_acc_drop, opts.objective, opts.finalists)
    threshold = info.chance_threshold
    picks += [t for t in summary.run.trials if t.paper and t.status == COMPLETED and t not in picks
              and learned(t.val_acc, threshold)]
    searched = {t.trial_id: _params(t, space) for t in picks if len(done.get(t.trial_id, [])) < len(seeds)}
    todo = {config_key(params): tid for tid, params in searched.items()}
    if not todo:
        return done
    points = [{**searched[tid], "seed": seed} for tid in todo.values() for seed in seeds]
    accs: dict[str, dict[int, float]] = {tid: {} for tid in todo.values()}
    for run in run_points(trainable, points, "finalist-seeds", run_dir):
        if run.finished(opts.run.epochs):  # an interrupted or failed re-run is not a result
            accs[todo[run.key]][run.seed] = run.report.val_acc
    for tid, by_seed in accs.items():  # a failed re-run leaves its finalist out: unverified
        if len(by_seed) == len(seeds):
            done[tid] = [by_seed[s] for s in seeds]
    return done


def _fidelity_check(opts, run_dir: Path, info: SearchInfo, trainable, space: SearchSpace, concurrency: int,
                    say) -> FidelityCheck | None:
    """Train dense, the pick and its nearest rivals (the finalists) for `opts.fidelity` x the epochs
    on the search's seed: does the ranking the search made on short runs survive longer training?

    Skipped, with the reason recorded, when there is no pick or when it would cost more than
    `fidelity_max_share` of the training time the trials took. Runs already measured are kept
    (resume); an interrupted check raises KeyboardInterrupt with the finished runs saved.
    """
    if not opts.fidelity:  # a check already recorded stays (off for this resume); else the report says it is off
        return info.fidelity or FidelityCheck(0.0, 0, opts.run.seed, skipped="turned off (--fidelity off)")

    from trilevel.core.run_store import load_run
    from trilevel.reports.selection import choose_finalists
    from trilevel.reports.summary import summarize

    epochs = max(opts.run.epochs + 1, round(opts.fidelity * opts.run.epochs))
    check = FidelityCheck(opts.fidelity, epochs, opts.run.seed)
    summary = summarize(load_run(run_dir), opts.max_acc_drop)
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
        say(f"Fidelity check skipped: {check.skipped}.")
        return check
    done = {r.trial_id for r in check.runs}
    todo = {config_key(_params(t, space)): t for t in configs if t.trial_id not in done}
    if not todo:
        return check
    say(f"Fidelity check: dense and {len(configs) - 1} front configuration(s) for {epochs} epochs "
        f"({opts.fidelity:g}x) on seed {opts.run.seed}: does the ranking hold with longer training?")
    points = [{**_params(t, space), "seed": opts.run.seed, "epochs": epochs} for t in todo.values()]
    failed: set[str] = set()
    for run in run_points(trainable, points, "fidelity", run_dir, concurrency):
        trial = todo[run.key]
        if run.error is not None:  # left out, with a note: the check covers the others
            failed.add(trial.trial_id)
            say(f"a fidelity run (trial {trial.trial_id}'s configuration) failed: {run.error[:200]}")
        elif run.finished(epochs):
            search_acc = summary.reference.acc if trial.is_baseline else trial.mean_acc
            check.runs.append(FidelityRun(trial.trial_id, search_acc, run.report.val_acc, run.report.train_seconds))
    if wanted - {r.trial_id for r in check.runs} - failed:  # stopped (Ctrl-C): resume trains the rest
        info.fidelity = check
        write_search(run_dir, info)
        raise KeyboardInterrupt
    return check


def _note_data(info: SearchInfo, report) -> None:
    """The data's sizes and chance level, as a dense run measured them."""
    for key in ("chance_acc", "num_train", "num_val"):
        if getattr(report, key) is not None:
            setattr(info, key, getattr(report, key))


def _params(trial, space: SearchSpace) -> dict:
    """The searched values of a recorded trial (the point the sampler proposed)."""
    config = trial.config.to_dict()
    return {name: config[name] for name in sorted(space.params)}
