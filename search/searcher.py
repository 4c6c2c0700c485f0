"""Optuna samplers driving Ray Tune, through Optuna's public ask/tell API, the study kept on disk.

`StudySearcher` is a Ray Tune `Searcher` (Ray's public extension point) over an Optuna study
that lives in the run directory (`optuna_journal.log`, Optuna's `JournalStorage` with its file
backend: safe for several writers, unlike SQLite on shared file systems), so

* `optuna-dashboard RUN_DIR/optuna_journal.log` shows the search's study and its Pareto front;
* a resumed search reloads the study with everything it was told, whatever Ray's snapshot says;
* nothing here touches Optuna's or Ray's private attributes (Ray's own `OptunaSearch` keeps its
  study in memory and tells a trial stopped by the scheduler as COMPLETE with truncated values).

What the study is told: a trial that ran `max_epochs` is COMPLETE with (accuracy, cost); one
stopped early by MO-ASHA is PRUNED (so `study.best_trials` holds only full-length trials); a
failed one is FAIL. Each Optuna trial carries its Ray trial id as the user attribute
`ray_trial_id`.

The budget and "never twice the same configuration" are enforced against the search's own record
(`trials.jsonl`), not Ray's experiment snapshot: after a kill -9 Ray restores its state as of its
last snapshot and may have forgotten trials that finished since, and a seeded sampler proposes
the same points again. Such a repeat is told the recorded outcome and skipped, so nothing is
re-run and the study still learns from it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from ray.tune.search import Searcher

from trilevel.core.errors import UserError, suggest
from trilevel.store.run_store import (
    COMPLETED, FINISHED, RUNNING, STOPPED_EARLY, STUDY_FILE, TrialRecord, config_key, load_records, write_trials,
)

from .constants import SAMPLERS

logger = logging.getLogger(__name__)

RAY_TRIAL_ID = "ray_trial_id"  # Optuna user attribute naming the Ray trial
MAX_REPEATS = 50  # repeat proposals in a row that end the search (the space is exhausted)


# Samplers by short name: seed -> a seeded Optuna sampler. The built-ins are SAMPLERS; a user adds
# theirs with `register_sampler` (in the driver process: the searcher runs there).
_SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed, population_size=8),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}
assert tuple(_SAMPLERS) == SAMPLERS


def register_sampler(name: str, factory: Callable[[int], optuna.samplers.BaseSampler], *,
                     replace: bool = False) -> None:
    """Make `name` usable as `--sampler name` / `SearchOptions(sampler=name)` in this process;
    `factory(seed)` returns a seeded Optuna sampler (a resumed search builds it again by name)."""
    if name in _SAMPLERS and not replace:
        raise ValueError(f"sampler {name!r} is already registered (pass replace=True to override it)")
    _SAMPLERS[name] = factory


def list_samplers() -> tuple[str, ...]:
    """Registered sampler names, the built-ins first."""
    return tuple(_SAMPLERS)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler by registered name."""
    if name not in _SAMPLERS:
        valid = list_samplers()
        raise UserError(f"unknown sampler {name!r}{suggest(name, valid)}; use {', '.join(valid)}")
    return _SAMPLERS[name](seed)


def journal_storage(path: str | Path) -> optuna.storages.JournalStorage:
    """Optuna's journal storage on one file (created when missing)."""
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def open_study(run_dir: str | Path | None, name: str, directions: list[str],
               sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """The search's study: in `run_dir/STUDY_FILE` (loaded when it exists), or in memory."""
    storage = journal_storage(Path(run_dir) / STUDY_FILE) if run_dir is not None else None
    return optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=sampler,
                               load_if_exists=True)


def tell_recorded(study: optuna.Study, number: int, record: TrialRecord | None, metric: list[str]) -> None:
    """Tell a study trial the outcome the run record holds: COMPLETE with the metric values,
    PRUNED when stopped early, FAIL otherwise (failed, still running, or no record)."""
    values = [record.value(m) for m in metric] if record else None
    if record and record.status == COMPLETED and all(v is not None for v in values):
        _tell(study, number, values, TrialState.COMPLETE)
    elif record and record.status == STOPPED_EARLY:
        _tell(study, number, None, TrialState.PRUNED)
    else:
        _tell(study, number, None, TrialState.FAIL)


def _tell(study: optuna.Study, number: int, values: list[float] | None, state: TrialState) -> None:
    try:
        study.tell(number, values, state=state, skip_if_finished=True)
    except ValueError as exc:  # e.g. NaN values: Optuna refuses them
        logger.warning("optuna refused trial %s: %s", number, exc)
        study.tell(number, state=TrialState.FAIL, skip_if_finished=True)


def reconcile_study(run_dir: str | Path, name: str, metric: list[str]) -> int:
    """After a Tuner run: study trials still RUNNING get the run record's outcome (trials lost with
    a dead driver are failed there; one asked but never started has no record: FAIL). Trials the
    record holds as running were interrupted and resume later, so they stay. Returns how many
    were told."""
    path = Path(run_dir) / STUDY_FILE
    if not path.exists():
        return 0
    study = optuna.load_study(study_name=name, storage=journal_storage(path))
    records = load_records(run_dir)
    told = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        record = records.get(trial.user_attrs.get(RAY_TRIAL_ID))
        if record is not None and record.status == RUNNING:
            continue
        tell_recorded(study, trial.number, record, metric)
        told += 1
    return told


def requeue_unfinished(run_dir: str | Path, name: str, space: Mapping[str, Any]) -> list[TrialRecord]:
    """Before a resume from the records alone (no Ray experiment state, no checkpoints: a copy of
    the run's `RECORD_FILES` on another machine, or from a repository): trials the record holds as
    running cannot continue where they stopped. Each is removed from the record, its study trial is
    failed (lost), and its configuration is enqueued so that it trains again from its first epoch
    before anything new is sampled. Finished trials stay and are never re-run; the budget counts the
    re-trained trial once. Returns the removed records (their ids: for MO-ASHA to forget)."""
    records = load_records(run_dir)
    unfinished = [r for r in records.values() if not r.finished]
    path = Path(run_dir) / STUDY_FILE
    if not unfinished or not path.exists():
        return []
    study = optuna.load_study(study_name=name, storage=journal_storage(path))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        _tell(study, trial.number, None, TrialState.FAIL)  # lost with the machine that ran it
    for record in unfinished:
        study.enqueue_trial({k: v for k, v in record.params.items() if k in space}, skip_if_exists=False)
    write_trials(run_dir, {tid: r for tid, r in records.items() if r.finished})
    return unfinished


class StudySearcher(Searcher):
    """Ray Tune searcher asking an Optuna study for points and telling it the outcomes.

    `space`: parameter name -> Optuna distribution. `sampler`: a `make_sampler` name (seeded with
    `seed`) or a sampler object. `metric`/`mode`: the reported keys and their
    directions, e.g. ["val_acc", "projected_seconds"], ["max", "min"]. `points_to_evaluate` are
    enqueued once, when the study is new (the dense point first). Without `run_dir` the study is
    in memory. `records`: where the budget and the repeat check read the search's trials
    (trial id -> `TrialRecord`); default `trials.jsonl` in
    `run_dir`, none without one. The replay benchmark passes its simulated records, so it runs
    this class rather than a copy of its rules.
    """

    def __init__(self, space: dict[str, BaseDistribution], metric: list[str], mode: list[str],
                 sampler: str | optuna.samplers.BaseSampler = "tpe", seed: int = 0, study_name: str = "trilevel",
                 points_to_evaluate: list[dict] | None = None, max_epochs: int = 1, epoch_key: str = "epoch",
                 run_dir: str | None = None, budget: int | None = None,
                 records: Callable[[], Mapping[str, TrialRecord]] | None = None,
                 snap: Callable[[dict], dict] | None = None):
        super().__init__(metric=metric, mode=mode)
        self.space = dict(space)
        self.sampler, self.seed, self.study_name = sampler, seed, study_name
        self.max_epochs, self.epoch_key = max_epochs, epoch_key
        self.run_dir, self.budget = run_dir, budget
        self.points_to_evaluate = list(points_to_evaluate or [])
        self.records = records
        self.snap = snap  # e.g. SearchSpace.snap: sampled values next to a range's edge set to it
        self.repeats = 0  # proposals of an already-tried configuration, told its outcome, not run
        self._numbers: dict[str, int] = {}  # Ray trial id -> Optuna trial number, while it runs
        self._study: optuna.Study | None = None

    # -- the study ----------------------------------------------------------------------------
    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            directions = ["maximize" if m == "max" else "minimize" for m in self.mode]
            sampler = make_sampler(self.sampler, self.seed) if isinstance(self.sampler, str) else self.sampler
            self._study = open_study(self.run_dir, self.study_name, directions, sampler)
            if not self._study.trials:
                for point in self.points_to_evaluate:
                    self._study.enqueue_trial(point)
        return self._study

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (Ray's tuner.pkl) without the study: it is reloaded from its file. An in-memory
        study (no run_dir) is not carried over, so such a search cannot be resumed."""
        state = dict(self.__dict__)
        state["_study"] = None
        state["records"] = None  # a callable; a resumed search reads run_dir's record
        return state

    def save(self, checkpoint_path: str) -> None:
        """Ray's experiment snapshot: only the running trials' numbers (the study saves itself)."""
        Path(checkpoint_path).write_text(json.dumps({"numbers": self._numbers}))

    def restore(self, checkpoint_path: str) -> None:
        self._numbers = dict(json.loads(Path(checkpoint_path).read_text()).get("numbers", {}))

    # -- Ray Tune hooks -----------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict | None:
        records = self._records()
        if self.budget is not None and records is not None and len(records) >= self.budget:
            return Searcher.FINISHED
        seen = {config_key(r.params): r for r in (records or {}).values()}
        for _ in range(MAX_REPEATS):
            trial = self.study.ask(self.space)
            params = self.snap(dict(trial.params)) if self.snap is not None else dict(trial.params)
            record = seen.get(config_key(params))
            if record is None:
                trial.set_user_attr(RAY_TRIAL_ID, trial_id)
                self._numbers[trial_id] = trial.number
                return params
            self.repeats += 1
            self._tell_recorded(trial.number, record)  # a repeat: learn its outcome, ask again
        return Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        number = self._numbers.pop(trial_id, None)
        if number is None:
            number = self._running_number(trial_id)
        if number is None:  # not ours (told already, or proposed by another searcher)
            return
        recorded = (self._records() or {}).get(trial_id)
        if recorded is not None and recorded.status in FINISHED:
            # The record is the truth: after a kill -9 Ray re-runs a trial the record holds as
            # finished (its trainable returns at once, with a stale or no result)
            self._tell_recorded(number, recorded)
            return
        values = [result.get(m) for m in self.metric] if result else None
        if error or not values or any(v is None for v in values):
            state, values = TrialState.FAIL, None
        elif result.get(self.epoch_key, 0) < self.max_epochs:
            state, values = TrialState.PRUNED, None
        else:
            state = TrialState.COMPLETE
        self._tell(number, values, state)

    # -- helpers ------------------------------------------------------------------------------
    def _records(self) -> Mapping[str, TrialRecord] | None:
        if self.records is not None:
            return self.records()
        if self.run_dir is None:
            return None
        return load_records(self.run_dir)  # the search's own record of every trial

    def _running_number(self, trial_id: str) -> int | None:
        """A trial started before a restore whose number was not in Ray's snapshot."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get(RAY_TRIAL_ID) == trial_id:
                return trial.number
        return None

    def _tell_recorded(self, number: int, record: TrialRecord) -> None:
        """A repeat proposal learns the earlier run's outcome; one still running counts as FAIL."""
        tell_recorded(self.study, number, record, self.metric)

    def _tell(self, number: int, values: list[float] | None, state: TrialState) -> None:
        _tell(self.study, number, values, state)


