"""Read a search run directory (`search.json` + `trials.jsonl`) into typed records.

The search may still be running or may have crashed, so the reader is strict about real corruption
(a bad `search.json`, a bad line in the middle of `trials.jsonl`: `UserError` naming file and line)
but tolerates the one thing a crash mid-append leaves behind: a half-written LAST line, which is
skipped with a warning kept in `Run.warnings`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trilevel.core.config import RunConfig, SparsityConfig
from trilevel.core.errors import UserError

SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.jsonl"
SEARCH_VERSION = 1
STATUSES = ("running", "completed", "stopped_early", "failed")
FINISHED = ("completed", "stopped_early", "failed")


@dataclass
class SearchInfo:
    """What `search.json` says about the search as a whole."""

    name: str
    model: str
    dataset: str
    space: str
    objective: str  # "time" (measured speedup) | "flops" (FLOPs speedup)
    sampler: str
    budget: int
    epochs: int
    grace_epochs: int
    reduction_factor: int
    max_acc_drop: float  # accuracy POINTS (0.5 = half a percentage point)
    seed: int
    command: str
    started: str | None
    finished: str | None
    wall_seconds: float | None
    status: str
    run_config: RunConfig
    baseline_accs: list[float]
    varied: list[str]
    # trial_id -> accuracies of the finalist re-runs on the dense baseline's extra seeds
    finalist_accs: dict[str, list[float]] = field(default_factory=dict)
    # reports/noise.py's verdict on dense (learned, threshold, chance, ...); None before it is known
    validity: dict[str, Any] | None = None
    resolution_pts: float | None = None  # smallest difference the finalists' seeds resolve (90%)
    num_train: int | None = None
    num_val: int | None = None
    # trial_id -> {delta_pts, delta_ci_pts: [low, high], pairs}: finalist minus dense, paired by seed
    finalist_deltas: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def learned(self) -> bool | None:
        """Whether dense learned (None: not checked yet, e.g. an older or running search)."""
        return None if self.validity is None else bool(self.validity.get("learned"))

    @property
    def chance_threshold(self) -> float | None:
        """Accuracy a run needs to count as having learned anything (None: unknown)."""
        return None if self.validity is None else _number(self.validity.get("threshold"), "validity threshold")


@dataclass
class TrialRecord:
    """One trial's latest state, as the search last wrote it."""

    trial_id: str
    config: SparsityConfig
    status: str
    epochs: int
    val_acc: float | None  # fraction 0..1
    train_seconds: float | None
    projected_seconds: float | None
    speedup: float | None
    flops_per_image: float | None
    flops_speedup: float | None
    is_baseline: bool
    error: str | None
    history: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    seed_accs: list[float] = field(default_factory=list)  # finalist re-runs on further seeds

    def speed(self, objective: str) -> float | None:
        """The speed the search optimises: measured speedup, or FLOPs speedup for `flops`."""
        return self.flops_speedup if objective == "flops" else self.speedup

    @property
    def accs(self) -> list[float]:
        """Every accuracy measured for this configuration: the search's seed first, then re-runs."""
        return ([] if self.val_acc is None else [self.val_acc]) + list(self.seed_accs)

    @property
    def mean_acc(self) -> float | None:
        """Accuracy averaged over every seed run (the search's val_acc when it was not re-run)."""
        return statistics.fmean(self.accs) if self.accs else None


@dataclass
class Run:
    """A loaded run directory: the search description, its trials in file order, and warnings."""

    path: Path
    search: SearchInfo
    trials: list[TrialRecord]
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for t in self.trials if t.status == status)

    @property
    def baseline(self) -> TrialRecord | None:
        """The dense reference trial (the last one marked `is_baseline`), if any."""
        marked = [t for t in self.trials if t.is_baseline]
        return marked[-1] if marked else None


def _number(value: Any, what: str, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
        raise UserError(f"{what} must be a number, got {value!r}")
    return float(value)


def _mapping(value: Any, what: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a mapping, got {value!r}")
    return value


def _search_info(data: Any, path: Path) -> SearchInfo:
    if not isinstance(data, dict):
        raise UserError(f"{path} must contain a JSON object, got {type(data).__name__}")
    version = data.get("version")
    if version != SEARCH_VERSION:
        raise UserError(f"{path}: unsupported format version {version!r} (this tool reads version {SEARCH_VERSION})")
    if "run_config" not in data:
        raise UserError(f"{path} has no 'run_config' (the base training run); the search did not write it")
    try:
        run_config = RunConfig.from_dict(data["run_config"])
        objective = data.get("objective", "time")
        if objective not in ("time", "flops"):
            raise UserError(f"objective must be 'time' or 'flops', got {objective!r}")
        accs = data.get("baseline_accs") or []
        if not isinstance(accs, list):
            raise UserError(f"baseline_accs must be a list of accuracies, got {accs!r}")
        baseline_accs = [_number(a, "baseline_accs entry", allow_none=False) for a in accs]
        varied = data.get("varied") or []
        if not isinstance(varied, list) or not all(isinstance(v, str) for v in varied):
            raise UserError(f"varied must be a list of field names, got {varied!r}")
        finalists = data.get("finalist_accs") or {}
        if not isinstance(finalists, dict) or not all(isinstance(v, list) for v in finalists.values()):
            raise UserError(f"finalist_accs must map trial ids to lists of accuracies, got {finalists!r}")
        finalist_accs = {str(tid): [_number(a, "finalist_accs entry", allow_none=False) for a in accs]
                         for tid, accs in finalists.items()}
        return SearchInfo(
            name=str(data.get("name", path.parent.name)),
            model=str(data.get("model", run_config.model)),
            dataset=str(data.get("dataset", run_config.dataset)),
            space=str(data.get("space", "")),
            objective=objective,
            sampler=str(data.get("sampler", "")),
            budget=int(data.get("budget") or 0),
            epochs=int(data.get("epochs") or run_config.epochs),
            grace_epochs=int(data.get("grace_epochs") or 0),
            reduction_factor=int(data.get("reduction_factor") or 0),
            max_acc_drop=_number(data.get("max_acc_drop", 0.5), "max_acc_drop", allow_none=False),
            seed=int(data.get("seed") or 0),
            command=str(data.get("command", "")),
            started=data.get("started"),
            finished=data.get("finished"),
            wall_seconds=_number(data.get("wall_seconds"), "wall_seconds"),
            status=str(data.get("status", "running")),
            run_config=run_config,
            baseline_accs=baseline_accs,
            varied=list(varied),
            finalist_accs=finalist_accs,
            validity=_mapping(data.get("validity"), "validity"),
            resolution_pts=_number(data.get("resolution_pts"), "resolution_pts"),
            num_train=int(data["num_train"]) if data.get("num_train") is not None else None,
            num_val=int(data["num_val"]) if data.get("num_val") is not None else None,
            finalist_deltas=_mapping(data.get("finalist_deltas"), "finalist_deltas") or {},
            raw=data,
        )
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: malformed field ({exc})") from None


def trial_from_dict(data: Any) -> TrialRecord:
    """Validate one trial record (a `trials.jsonl` line or a live-progress update)."""
    if not isinstance(data, dict):
        raise UserError(f"a trial record must be a JSON object, got {type(data).__name__}")
    if "trial_id" not in data:
        raise UserError("trial record has no 'trial_id'")
    status = data.get("status")
    if status not in STATUSES:
        raise UserError(f"trial status must be one of {', '.join(STATUSES)}; got {status!r}")
    history = data.get("history") or []
    if not isinstance(history, list):
        raise UserError(f"history must be a list of epoch reports, got {history!r}")
    val_acc = _number(data.get("val_acc"), "val_acc")
    if val_acc is not None and not 0.0 <= val_acc <= 1.0:
        raise UserError(f"val_acc must be a fraction in [0, 1], got {val_acc}")
    try:
        epochs = int(data.get("epochs") or 0)
    except (TypeError, ValueError):
        raise UserError(f"epochs must be an integer, got {data.get('epochs')!r}") from None
    return TrialRecord(
        trial_id=str(data["trial_id"]),
        config=SparsityConfig.from_dict(data.get("config") or {}),
        status=status,
        epochs=epochs,
        val_acc=val_acc,
        train_seconds=_number(data.get("train_seconds"), "train_seconds"),
        projected_seconds=_number(data.get("projected_seconds"), "projected_seconds"),
        speedup=_number(data.get("speedup"), "speedup"),
        flops_per_image=_number(data.get("flops_per_image"), "flops_per_image"),
        flops_speedup=_number(data.get("flops_speedup"), "flops_speedup"),
        is_baseline=bool(data.get("is_baseline", False)),
        error=data.get("error"),
        history=history,
        raw=data,
    )


def _read_trials(path: Path) -> tuple[list[TrialRecord], list[str]]:
    """Parse `trials.jsonl`; a later line for the same trial_id replaces the earlier one."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason})") from None
    lines = text.split("\n")
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    by_id: dict[str, TrialRecord] = {}
    warnings: list[str] = []
    for index, (lineno, line) in enumerate(numbered):
        last = index == len(numbered) - 1
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if last:
                # A crash (or a concurrent writer) mid-append leaves a half-written final line.
                warnings.append(f"{path}: ignored half-written last line {lineno} (search crashed or still writing)")
                continue
            raise UserError(f"{path} line {lineno} is not valid JSON ({exc.msg}); the file is corrupt") from None
        try:
            record = trial_from_dict(data)
        except UserError as exc:
            raise UserError(f"{path} line {lineno}: {exc}") from None
        by_id.pop(record.trial_id, None)  # keep file order of the latest state
        by_id[record.trial_id] = record
    return list(by_id.values()), warnings


def load_run(run_dir: str | Path) -> Run:
    """Load a run directory. Raises `UserError` when it is missing, not a run, empty or corrupt."""
    path = Path(run_dir)
    if not path.exists():
        raise UserError(f"run directory not found: {path}")
    if not path.is_dir():
        raise UserError(f"not a directory: {path} (expected a run directory written by trilevel-search)")
    search_path = path / SEARCH_FILE
    trials_path = path / TRIALS_FILE
    if not search_path.is_file():
        raise UserError(f"not a run directory: {path} has no {SEARCH_FILE} (expected the output of trilevel-search)")
    try:
        data = json.loads(search_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{search_path} is corrupt: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{search_path} is not UTF-8 text ({exc.reason})") from None
    search = _search_info(data, search_path)
    if search.learned is False and not trials_path.is_file():  # stopped after the dense seeds: a verdict, no trials
        return Run(path=path, search=search, trials=[])
    if not trials_path.is_file():
        raise UserError(f"no trials yet: {path} has no {TRIALS_FILE}")
    trials, warnings = _read_trials(trials_path)
    if not trials:
        raise UserError(f"no trials recorded yet in {trials_path}")
    for trial in trials:
        trial.seed_accs = list(search.finalist_accs.get(trial.trial_id, []))
    return Run(path=path, search=search, trials=trials, warnings=warnings)
