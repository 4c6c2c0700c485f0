"""Run a search: Ray Tune + Optuna sampler + MO-ASHA over a search space, into one run directory.

Flow: options -> validated base RunConfig and space -> preflight (the model builds) -> run
directory (search.json, search/run_dir.py) and its lock -> Ray (the caller's, or our own: local,
quiet, loopback; or `--address`) -> the phases (search/phases/: the proxy's length, dense on the
extra seeds, the trials, the dense reference, train-shorter, the finalists, the fidelity check),
each recorded in search.json when it ends -> exports (pareto.json, best.yaml, plot) -> a
`SearchResult`. Exit codes, signals and the terminal report belong to the CLI.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trilevel.core.config import RunConfig
from trilevel.core.data import dataset_info
from trilevel.core.errors import UserError
from trilevel.store.run_store import (
    NOT_LEARNED, SEARCH_FAILED, SEARCH_FILE, SEARCH_FINISHED, SEARCH_INTERRUPTED, SearchInfo, load_records,
)
from trilevel.reports.noise import Validity
from trilevel.reports.proxy import describe_epochs_auto
from trilevel.spaces import SearchSpace

from .cluster import init_ray, trial_concurrency, trial_resources
from .lock import RunLock
from .options import SearchOptions
from .run_dir import now, prepare
from .storage import Storage, StorageDown, StorageLease, require_shared_storage


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
    storage = Storage(opts.storage, run_dir.name) if opts.storage else None
    lease = StorageLease(storage) if storage is not None else None  # one driver per stored run, across machines
    lock = RunLock(run_dir)  # one driver per run directory: a second one gets a line naming the first
    try:
        if storage is not None:
            storage.check()  # one line now, not a failure at the first checkpoint
            lease.acquire(say)
            if not opts.resume and storage.holds_search():
                raise UserError(f"{storage.tune_root} already holds a search; add --resume to continue it or pick "
                                "another --name")
            if opts.resume and not (run_dir / SEARCH_FILE).is_file():  # another machine's search: its records
                names = storage.pull(run_dir)
                say(f"Resuming from {storage.records_uri}: copied {', '.join(names)} into {run_dir}.")
            elif opts.resume and (ahead := storage.ahead_of(run_dir)):  # resuming would overwrite what came since
                raise UserError(f"{storage.records_uri} holds {ahead} finished trial(s) that "
                                f"{run_dir} lacks (the search went on elsewhere): move {run_dir} away and --resume "
                                "again to continue from the storage")
        if opts.resume and run_dir.is_dir():
            lock.acquire(say)  # before search.json is touched
        info = prepare(opts, space, grace, run_dir)
        lock.acquire(say)  # a new search's directory exists now (no-op when held)
        return _search(opts, space, grace, run_dir, info, say, on_ray_started, storage)
    finally:
        lock.release()
        if lease is not None:
            lease.release()


def _search(opts: SearchOptions, space: SearchSpace, grace: int, run_dir: Path, info: SearchInfo, say,
            on_ray_started, storage: Storage | None) -> SearchResult:
    """`run_search` once the run directory is prepared and locked: Ray, then the phases in order."""
    from .ray_compat import quiet_env

    quiet_env()  # before `import ray`
    import optuna
    import ray

    from trilevel.reports import LiveProgress

    from . import phases
    from .phases import dense_seeds, fidelity, finalists, proxy_length, reference, train_shorter, trials
    from .recorder import attach_live_view

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    owns_ray = not ray.is_initialized()
    started = time.time()  # wall time includes Ray start-up: it is part of what the search costs
    if owns_ray:
        init_ray(opts)
        if on_ray_started is not None:
            on_ray_started()
    ctx = phases.Context(opts, space, run_dir, info, say, grace=grace, storage=storage)
    interrupted = succeeded = False
    not_learned = None
    live = None
    try:
        if opts.address:
            require_shared_storage(ray.nodes(), opts.storage)
        ctx.resources = trial_resources(opts, ray.cluster_resources())
        ctx.concurrency = trial_concurrency(opts, ray.cluster_resources())
        if opts.epochs_auto:  # the trials' length first: everything after trains at it
            chosen = proxy_length.run(ctx).chosen
            ctx.opts = opts = dataclasses.replace(opts, run=opts.run.replace(epochs=chosen))
            ctx.grace = opts.grace(space)
            ctx.record(epochs=chosen, grace_epochs=ctx.grace, run_config=opts.run)
        if not opts.resume:  # a resumed search keeps what it enqueued when it started
            ctx.record(papers=dict(space.paper_points()) if opts.papers == "first" else {})
        trials.prepare(ctx)
        # Dense first, on the extra seeds: before any budget is spent, is there anything to rank,
        # and how large is the noise?
        extra = dense_seeds.run(ctx)
        live = LiveProgress(
            opts.budget, opts.max_acc_drop, objective=opts.objective,
            baseline_accs=ctx.info.baseline_accs or list(extra.values()) or None,
            note=describe_epochs_auto(ctx.info.epochs_auto) if ctx.info.epochs_auto is not None else None,
        ) if opts.live else None
        attach_live_view(run_dir, live)
        if live is not None:
            live.start()
            for record in load_records(run_dir).values():
                live.update(record)
        records = trials.run(ctx, extra)
        reference.run(ctx, extra, records)
        interrupted = sum(r.finished for r in records.values()) < opts.budget
        if not interrupted:
            ctx.record(train_shorter=train_shorter.run(ctx))
            result = finalists.run(ctx)
            ctx.record(finalist_accs=result.accs, finalist_deltas=result.deltas)  # the fidelity check's pick
            ctx.record(fidelity=fidelity.run(ctx))
            reference.check_climb(ctx, records)  # dense trained longer settles "still climbing"
        succeeded = True
    except phases.NotLearned as exc:
        not_learned = exc.verdict
        succeeded = True
    except KeyboardInterrupt:
        interrupted = True
    except StorageDown:
        interrupted = True
        storage.failing = "stopped the search"  # this line says it; the copies below stay quiet
        say(f"--storage {storage.uri} stopped answering, so the search stopped; the finished trials are kept in "
            f"{run_dir}; --resume continues once it answers (the trials it cut off train again).")
    finally:
        if live is not None:
            live.stop()
        ended = {"status": SEARCH_INTERRUPTED if interrupted else (SEARCH_FINISHED if succeeded else SEARCH_FAILED)}
        if not_learned is not None:
            ended = {"status": NOT_LEARNED, "validity": not_learned.to_dict()}
        ctx.record(**ended, wall_seconds=(ctx.info.wall_seconds or 0.0) + time.time() - started,
                   finished=now() if succeeded and not interrupted else None)
        if owns_ray:
            ray.shutdown()
    return _result(ctx, interrupted, not_learned)


def _result(ctx, interrupted: bool, not_learned: Validity | None) -> SearchResult:
    """The exports and what the search returns, once its phases have ended (or stopped); the
    exports are mirrored to `--storage`, and a finished search's checkpoints are removed there too."""
    from trilevel.reports import write_outputs
    from trilevel.reports.summary import remove_best

    opts, run_dir, info, say = ctx.opts, ctx.run_dir, ctx.info, ctx.say

    if not_learned is not None:
        remove_best(run_dir)  # from an earlier report of an interrupted run: nothing backs it now
        ctx.mirror()
        return SearchResult(run_dir, NOT_LEARNED, validity=not_learned,
                            explanation=not_learned.explanation(opts.run.epochs, info.num_train, info.num_val))
    if interrupted and not load_records(run_dir):  # stopped while dense trained its extra seeds
        return SearchResult(run_dir, SEARCH_INTERRUPTED)
    if info.status == SEARCH_FINISHED and not opts.keep_checkpoints:
        freed = drop_checkpoints(run_dir) + (ctx.storage.drop_checkpoints() if ctx.storage is not None else 0)
        if freed:
            size = f"{freed / 1e9:.1f} GB" if freed >= 1e9 else f"{freed / 1e6:.0f} MB"
            say(f"Removed {size} of training checkpoints: they only serve an unfinished search's "
                "resume (--keep-checkpoints keeps them).")
    summary = write_outputs(run_dir, opts.max_acc_drop)
    ctx.mirror()
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
