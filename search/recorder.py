"""Driver-side record of every trial: `trials.jsonl` (rewritten atomically) and the live view.

A Ray Tune callback: runs in the driver's main thread, so it stays cheap (a small JSON rewrite
per event). On resume it reloads what was recorded, so no finished trial is lost or re-counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper

from trilevel.core.config import SparsityConfig
from trilevel.core.errors import UserError
from trilevel.reports.atomic import atomic_write_text
from trilevel.reports.noise import check_learned

TRIALS_FILE = "trials.jsonl"
FINISHED = ("completed", "stopped_early", "failed")
_LIVE_VIEWS: dict[str, Any] = {}  # run dir -> LiveProgress, looked up after unpickling on resume


def attach_live_view(run_dir: str | Path, live) -> None:
    """Register the live view for a run (callbacks are pickled, so they cannot hold it)."""
    _LIVE_VIEWS[str(Path(run_dir).resolve())] = live


def load_records(run_dir: str | Path) -> dict[str, dict]:
    """trial_id -> latest record from trials.jsonl (a torn last line from a crash is ignored)."""
    path = Path(run_dir) / TRIALS_FILE
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records[record["trial_id"]] = record
        except (json.JSONDecodeError, TypeError, KeyError):
            if number == len(lines):
                continue  # a torn last line from a crash mid-write of an older version
            raise UserError(f"{path} line {number} is corrupt; fix or remove the file (it is the search's record)") from None
    return records


class RunRecorder(Callback, Stopper):
    """Keeps one record per trial in the format the reports read (see reports/records.py).

    Also a Tune stopper: when the dense baseline fails, every speedup would be meaningless, and when
    it finishes without having learned (reports/noise.py's rule) every accuracy is noise; either way
    the whole search stops (`baseline_error` says why).
    """

    def __init__(self, run_dir: str | Path, max_epochs: int, fixed: dict, dense_point: dict):
        self.run_dir = str(Path(run_dir).resolve())
        self.max_epochs = max_epochs
        self.fixed = dict(fixed)
        self.dense_point = dict(dense_point)
        self.records: dict[str, dict] = {}
        self.baseline_error: str | None = None

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.baseline_error is not None

    def setup(self, **info) -> None:
        self.records = load_records(self.run_dir)

    @property
    def live(self):
        return _LIVE_VIEWS.get(self.run_dir)

    # -- Tune hooks -----------------------------------------------------------------------------
    def _final(self, trial) -> bool:
        """A finished record is final: a restored trial replaying old epochs must not change it."""
        record = self.records.get(trial.trial_id)
        return record is not None and record["status"] in FINISHED

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        record["status"] = "running"
        self._changed(record)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        epoch = int(result.get("epoch", 0))
        record.update(
            status="running",
            epochs=epoch,
            val_acc=result.get("val_acc"),
            train_seconds=result.get("train_seconds"),
            projected_seconds=result.get("projected_seconds"),
            flops_per_image=result.get("flops_per_image"),
            train_flops=result.get("train_flops"),
            planned_train_flops=result.get("planned_train_flops"),
            expected_train_flops=result.get("expected_train_flops"),
            flops_speedup=result.get("flops_speedup"),
        )
        for key in ("chance_acc", "num_train", "num_val"):
            if result.get(key) is not None:
                record[key] = result[key]
        if "resumed_from" in result:  # > 0: this attempt continued from a checkpoint (retry or resume)
            record["resumed_from"] = int(result["resumed_from"])
        history = [h for h in record["history"] if h["epoch"] < epoch]
        history.append({"epoch": epoch, "val_acc": result.get("epoch_val_acc"),
                        "train_seconds": result.get("epoch_seconds")})
        record["history"] = history
        self._changed(record)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        record["status"] = "completed" if record["epochs"] >= self.max_epochs else "stopped_early"
        if record["is_baseline"] and record["status"] == "completed" and record.get("chance_acc") is not None:
            verdict = check_learned([record["val_acc"]], record["chance_acc"])
            if not verdict.learned:
                self.baseline_error = (f"dense did not learn ({100 * verdict.mean:.1f}% < "
                                       f"{100 * verdict.threshold:.1f}%)")
        self._changed(record)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        """Ray retries the trial from its last checkpoint, if any (FailureConfig; e.g. its node was lost):
        not a failure yet, but keep why."""
        if self._final(trial):
            return
        record = self._record(trial)
        record["retries"] = record.get("retries", 0) + 1
        record["retry_errors"] = [*record.get("retry_errors", []), _error_message(trial)]
        self._changed(record)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        if self._final(trial):
            return
        record = self._record(trial)
        record["status"] = "failed"
        record["error"] = _error_message(trial)
        if record["is_baseline"]:
            self.baseline_error = record["error"]
        self._changed(record)

    # -- records --------------------------------------------------------------------------------
    def _record(self, trial) -> dict:
        if trial.trial_id not in self.records:
            params = dict(trial.config)
            seedless = {k: v for k, v in params.items() if k != "seed"}
            is_baseline = seedless == self.dense_point and not any(
                r["is_baseline"] for r in self.records.values()
            )
            self.records[trial.trial_id] = {
                "trial_id": trial.trial_id,
                "config": SparsityConfig(**{**self.fixed, **seedless}).to_dict(),
                "params": params,
                "status": "running",
                "epochs": 0,
                "val_acc": None,
                "train_seconds": 0.0,
                "projected_seconds": None,
                "speedup": None,
                "flops_per_image": None,
                "flops_speedup": None,
                "is_baseline": is_baseline,
                "error": None,
                "history": [],
            }
        return self.records[trial.trial_id]

    def baseline(self) -> dict | None:
        return next((r for r in self.records.values() if r["is_baseline"]), None)

    def _changed(self, record: dict) -> None:
        record.pop("lost", None)  # Ray knows this trial (see mark_lost_trials)
        base = self.baseline()
        reference = base.get("projected_seconds") if base else None
        for r in self.records.values():  # the baseline may report after others: refresh all
            projected = r.get("projected_seconds")
            r["speedup"] = reference / projected if reference and projected else None
        self.write()
        live = self.live
        if live is not None:
            live.update(record)

    def write(self) -> None:
        _write_records(self.run_dir, self.records)



def mark_lost_trials(run_dir: str | Path) -> None:
    """Before a resume: flag trials recorded as running. Ray may not know them (they started after
    its last snapshot, then the driver died); the ones it restores are unflagged by the hooks."""
    records = load_records(run_dir)
    for r in records.values():
        if r["status"] == "running":
            r["lost"] = True
    _write_records(run_dir, records)


def finished_trial_ids(run_dir: str | Path) -> tuple[str, ...]:
    return tuple(tid for tid, r in load_records(run_dir).items() if r["status"] in FINISHED)


def settle_lost_trials(run_dir: str | Path) -> None:
    """After the search: trials still flagged were lost with the driver and never re-run."""
    records = load_records(run_dir)
    for r in records.values():
        if r.pop("lost", False) and r["status"] == "running":
            r["status"] = "failed"
            r["error"] = "lost: the search driver died before Ray saved this trial (not re-run)"
    _write_records(run_dir, records)


def _write_records(run_dir: str | Path, records: dict[str, dict]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records.values())
    atomic_write_text(Path(run_dir) / TRIALS_FILE, text)


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
