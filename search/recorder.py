"""Driver-side record of every trial: a thin Ray Tune callback onto the run store.

Runs in the driver's main thread, so it stays cheap (a small JSON rewrite per event). It turns
Tune's events into `TrialRecord` updates (`store/run_store.py` owns the format, the file and its
reading); on resume it reloads what was recorded, so no finished trial is lost or re-counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper

from trilevel.core.config import SparsityConfig
from trilevel.store.run_store import (
    COMPLETED, FAILED, ORIGIN_DENSE, ORIGIN_PAPER, ORIGIN_SAMPLER, RUNNING, STOPPED_EARLY, EpochReport, TrialRecord,
    load_records, write_trials,
)
from trilevel.reports.noise import check_learned

_LIVE_VIEWS: dict[str, Any] = {}  # run dir -> LiveProgress, looked up after unpickling on resume


def attach_live_view(run_dir: str | Path, live) -> None:
    """Register the live view for a run (callbacks are pickled, so they cannot hold it)."""
    _LIVE_VIEWS[str(Path(run_dir).resolve())] = live


class RunRecorder(Callback, Stopper):
    """Keeps one record per trial in the format the reports read (see reports/records.py).

    Also a Tune stopper: when the dense baseline fails, every speedup would be meaningless, and when
    it finishes without having learned (reports/noise.py's rule) every accuracy is noise; either way
    the whole search stops (`baseline_error` says why).
    """

    def __init__(self, run_dir: str | Path, max_epochs: int, fixed: dict, dense_point: dict,
                 papers: dict[str, dict] | None = None, storage=None):
        self.run_dir = str(Path(run_dir).resolve())
        self.max_epochs = max_epochs
        self.fixed = dict(fixed)
        self.dense_point = dict(dense_point)
        self.papers = {name: dict(point) for name, point in (papers or {}).items()}  # enqueued after dense
        self.records: dict[str, TrialRecord] = {}
        self.baseline_error: str | None = None
        self.storage = storage  # search/storage.py: records mirrored at every trial's end
        self.storage_error: str | None = None  # a trial stopped because the storage did not answer

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.baseline_error is not None or getattr(self, "storage_error", None) is not None

    def setup(self, **info) -> None:
        self.records = load_records(self.run_dir)

    @property
    def live(self):
        return _LIVE_VIEWS.get(self.run_dir)

    # -- Tune hooks -----------------------------------------------------------------------------
    def _final(self, trial) -> bool:
        """A finished record is final: a restored trial replaying old epochs must not change it."""
        record = self.records.get(trial.trial_id)
        return record is not None and record.finished

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        record.status = RUNNING
        self._changed(record)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        record.apply(EpochReport.from_result(result))
        self._changed(record)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        record.status = COMPLETED if record.epochs >= self.max_epochs else STOPPED_EARLY
        if record.is_baseline and record.status == COMPLETED and record.chance_acc is not None:
            verdict = check_learned([record.val_acc], record.chance_acc)
            if not verdict.learned:
                self.baseline_error = (f"dense did not learn ({100 * verdict.mean:.1f}% < "
                                       f"{100 * verdict.threshold:.1f}%)")
        self._changed(record)
        self._mirror()

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        """Ray retries the trial from its last checkpoint, if any (FailureConfig; e.g. its node was lost):
        not a failure yet, but keep why."""
        if self._final(trial):
            return
        record = self._record(trial)
        record.retries += 1
        record.retry_errors = [*record.retry_errors, _error_message(trial)]
        self._changed(record)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        storage = getattr(self, "storage", None)
        if storage is not None and not storage.answers():  # the storage's outage, not the trial's failure:
            self.storage_error = _error_message(trial)  # left running, it trains again on resume
            self._changed(record)
            return
        record.status = FAILED
        record.error = _error_message(trial)
        if record.is_baseline:
            self.baseline_error = record.error
        self._changed(record)
        self._mirror()

    # -- records --------------------------------------------------------------------------------
    def _record(self, trial) -> TrialRecord:
        if trial.trial_id not in self.records:
            params = dict(trial.config)
            seedless = {k: v for k, v in params.items() if k != "seed"}
            is_baseline = seedless == self.dense_point and not any(r.is_baseline for r in self.records.values())
            paper = next((name for name, point in self.papers.items() if point == seedless), None)
            origin = ORIGIN_DENSE if seedless == self.dense_point else (
                ORIGIN_PAPER + paper if paper is not None else ORIGIN_SAMPLER)
            self.records[trial.trial_id] = TrialRecord(
                trial_id=trial.trial_id, params=params, config=SparsityConfig(**{**self.fixed, **seedless}),
                is_baseline=is_baseline, origin=origin,
            )
        return self.records[trial.trial_id]

    def baseline(self) -> TrialRecord | None:
        return next((r for r in self.records.values() if r.is_baseline), None)

    def _changed(self, record: TrialRecord) -> None:
        record.lost = False  # Ray knows this trial (see run_store.mark_lost_trials)
        base = self.baseline()
        reference = base.projected_seconds if base else None
        for r in self.records.values():  # the baseline may report after others: refresh all
            r.wall_speedup = reference / r.projected_seconds if reference and r.projected_seconds else None
            r.speedup = r.paired_speedup if r.paired_speedup is not None else r.wall_speedup
        self.write()
        live = self.live
        if live is not None:
            live.update(record)

    def write(self) -> None:
        write_trials(self.run_dir, self.records)

    def _mirror(self) -> None:
        """A finished trial's record to `--storage` too (the phase's end says if it does not answer)."""
        storage = getattr(self, "storage", None)  # a recorder pickled before --storage existed has none
        if storage is not None:
            storage.push(Path(self.run_dir))


def _error_message(trial) -> str:
    """The last meaningful line of the trial's error (e.g. 'RuntimeError: training diverged: ...')."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path and Path(path).exists():
        text = Path(path).read_text(errors="replace")
    elif getattr(trial, "error_msg", None):
        text = str(trial.error_msg)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:500]
    return lines[-1][:500] if lines else "unknown error"
