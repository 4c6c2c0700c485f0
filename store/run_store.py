"""The run directory of a search: every file name, status and result key defined once, typed
records with to/from dict, one reader and one writer with one corruption policy, and the
lost/finished reconciliation a resumed search needs.

Data flows one way through these types: the trainer's metrics become an `EpochReport` (what a
trial reports to Ray Tune each epoch), the search's recorder folds reports into `TrialRecord`s
and writes them here, and the reports, the live view and the searcher read `TrialRecord`s back.
No other module parses `trials.jsonl` or spells a file name.

Corruption policy (one, for every reader): a half-written LAST line of `trials.jsonl` (what a
crash mid-write of an older version could leave) is skipped with a warning; anything else that
does not parse is an error naming the file and line, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from trilevel.core.atomic import atomic_write_text
from trilevel.core.config import RunConfig, SparsityConfig
from trilevel.core.metrics import RunMetrics
from trilevel.core.errors import UserError
from trilevel.core.status import RunStatus, StrEnum

from .codec import decode, encode, integer, number

# -- files in a run directory -------------------------------------------------------------------
SEARCH_FILE = "search.json"  # the search's settings, status, dense seeds, verdicts (SearchInfo)
TRIALS_FILE = "trials.jsonl"  # one TrialRecord per line, rewritten atomically
STUDY_FILE = "optuna_journal.log"  # the Optuna study (JournalStorage, file backend)
MOASHA_STATE = "moasha_state.json"  # MO-ASHA's rungs, so a resumed search stops as before
PARETO_JSON, PARETO_YAML = "pareto.json", "pareto.yaml"
BEST_YAML, BEST_JSON = "best.yaml", "best.json"
PARETO_PNG, PARETO_HTML = "pareto.png", "pareto.html"
LOCK_FILE = "driver.lock"  # the search driver's lock: one driver per run (search/lock.py)
# A search's records: everything a resume needs and every figure reads, without checkpoints or
# Ray's experiment state. A copy of these alone (another machine, a repository) can be resumed.
RECORD_FILES = (SEARCH_FILE, TRIALS_FILE, STUDY_FILE, MOASHA_STATE, PARETO_JSON, PARETO_YAML, BEST_YAML, BEST_JSON,
                PARETO_PNG)
SEARCH_VERSION = 1
# The full training a search plans for unless told otherwise (`--full-epochs`): DeiT's schedule.
FULL_EPOCHS = 300

# -- statuses: string enums, so a status compares equal to (and is written as) its plain string ----
class TrialStatus(StrEnum):
    """A trial's status in `trials.jsonl`: a training run's (core/status.py), or stopped or failed."""

    RUNNING = RunStatus.RUNNING.value
    COMPLETED = RunStatus.COMPLETED.value  # trained every epoch
    STOPPED_EARLY = "stopped_early"  # stopped at a rung by MO-ASHA
    FAILED = "failed"  # crashed, diverged, out of memory, or lost with its driver


class SearchStatus(StrEnum):
    """A search's status in search.json."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM: --resume continues
    FAILED = "failed"
    NOT_LEARNED = "not_learned"  # dense did not learn: nothing ranked or exported


RUNNING, COMPLETED, STOPPED_EARLY, FAILED = (TrialStatus.RUNNING, TrialStatus.COMPLETED, TrialStatus.STOPPED_EARLY,
                                             TrialStatus.FAILED)
STATUSES = tuple(TrialStatus)
FINISHED = (COMPLETED, STOPPED_EARLY, FAILED)
LOST_ERROR = "lost: the search driver died before Ray saved this trial (not re-run)"
SEARCH_RUNNING, SEARCH_FINISHED, SEARCH_INTERRUPTED, SEARCH_FAILED = (
    SearchStatus.RUNNING, SearchStatus.FINISHED, SearchStatus.INTERRUPTED, SearchStatus.FAILED)
NOT_LEARNED = SearchStatus.NOT_LEARNED

# -- where a trial's configuration came from (TrialRecord.origin) -------------------------------------
ORIGIN_DENSE, ORIGIN_SAMPLER, ORIGIN_PAPER = "dense", "sampler", "paper:"  # paper:<name> (spaces/papers.py)

# -- objectives: the search's cost -> the result key that measures it ------------------------------
# time: the full run's cost against dense's, timed in pairs inside the trial (core/paired.py), which
# the machine's other work does not move; wall-clock seconds stay recorded beside it.
OBJECTIVE_KEYS = {"time": "paired_cost", "flops": "expected_train_flops"}
OBJECTIVES = tuple(OBJECTIVE_KEYS)
ACCURACY_KEY = "val_acc"
EPOCH_KEY = "epoch"


@dataclass
class EpochReport:
    """What a trial reports to Ray Tune after each epoch (the keys of its result dict).

    `val_acc`, `train_seconds` etc. are for the run so far; `epoch_seconds` and `epoch_val_acc`
    for this epoch alone. `paired_cost` (a fraction of dense's) and `expected_train_flops` are the
    run's full-length cost, the search's objectives (`OBJECTIVE_KEYS`); `projected_seconds` is the
    wall-clock projection beside them.
    """

    epoch: int
    val_acc: float | None
    train_seconds: float | None = None
    projected_seconds: float | None = None
    train_flops: float | None = None
    planned_train_flops: float | None = None
    flops_per_image: float | None = None
    expected_train_flops: float | None = None
    flops_speedup: float | None = None
    paired_cost: float | None = None
    paired_speedup: float | None = None
    images_per_second: float | None = None
    epoch_seconds: float | None = None
    epoch_val_acc: float | None = None
    active_examples: int | None = None
    resumed_from: int = 0  # > 0: this attempt continued from a checkpoint (retry or resume)
    chance_acc: float | None = None
    num_train: int | None = None
    num_val: int | None = None
    world_size: int = 1  # processes the trial trains on (`--workers-per-trial`)

    @classmethod
    def from_metrics(cls, metrics: RunMetrics, resumed_from: int = 0) -> "EpochReport":
        """From `Trainer.metrics` (trainer.fit's per-epoch callback argument)."""
        last = metrics.history[-1]
        return cls(
            epoch=metrics.epochs, val_acc=metrics.val_acc, train_seconds=metrics.train_seconds,
            projected_seconds=metrics.projected_seconds, train_flops=metrics.train_flops,
            planned_train_flops=metrics.planned_train_flops, flops_per_image=metrics.flops_per_image,
            expected_train_flops=metrics.expected_train_flops, flops_speedup=metrics.flops_speedup,
            paired_cost=metrics.paired_cost, paired_speedup=metrics.paired_speedup,
            images_per_second=metrics.images_per_second, epoch_seconds=last["train_seconds"],
            epoch_val_acc=last["val_acc"], active_examples=last["active_examples"], resumed_from=resumed_from,
            chance_acc=metrics.chance_acc, num_train=metrics.num_train, num_val=metrics.num_val,
            world_size=metrics.world_size,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> "EpochReport":
        """From a Ray Tune result dict (which adds its own keys; those are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in result.items() if k in known}
        data.setdefault("epoch", 0)
        data.setdefault("val_acc", None)
        data["epoch"] = int(data["epoch"] or 0)
        data["resumed_from"] = int(data.get("resumed_from") or 0)
        data["world_size"] = int(data.get("world_size") or 1)
        return cls(**data)


@dataclass
class TrialRecord:
    """One trial's latest state: one line of `trials.jsonl`.

    Written by the search's recorder (a Ray Tune callback), read by the reports, the live view, the
    searcher's budget/repeat checks and resume. `params` are the values the sampler proposed,
    `config` the full sparsity configuration they make with the space's fixed settings.
    """

    trial_id: str
    status: TrialStatus = RUNNING
    params: dict[str, Any] = field(default_factory=dict)
    config: SparsityConfig = field(default_factory=SparsityConfig)
    epochs: int = 0
    val_acc: float | None = None  # fraction 0..1
    train_seconds: float | None = 0.0
    projected_seconds: float | None = None
    # The speed the reports show: the paired speedup (measured inside the trial against dense, see
    # core/paired.py), or the wall-clock ratio to dense's projected seconds when a trial has none.
    speedup: float | None = None
    wall_speedup: float | None = None  # dense's projected seconds / this trial's, always recorded
    paired_cost: float | None = None  # the full run's cost as a fraction of dense's (time objective)
    paired_speedup: float | None = None
    flops_per_image: float | None = None
    train_flops: float | None = None
    planned_train_flops: float | None = None
    expected_train_flops: float | None = None
    flops_speedup: float | None = None
    is_baseline: bool = False
    # dense | paper:<name> (a paper's setting, tried right after dense) | sampler; None: an older record
    origin: str | None = None
    error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: epoch, val_acc, train_seconds
    chance_acc: float | None = None
    num_train: int | None = None
    num_val: int | None = None
    resumed_from: int | None = None
    retries: int = 0  # Ray retried it from its last checkpoint (FailureConfig), e.g. its node was lost
    world_size: int = 1  # processes it trained on (`--workers-per-trial`)
    retry_errors: list[str] = field(default_factory=list)
    lost: bool = False  # running when the driver died; unflagged when Ray restores it (resume)
    seed_accs: list[float] = field(default_factory=list)  # finalist re-runs (search.json), not stored here

    _STORED_EXCLUDE = ("seed_accs",)

    # -- what the reports ask --------------------------------------------------------------------
    def speed(self, objective: str) -> float | None:
        """The speed the search optimises: measured speedup, or FLOPs speedup for `flops`."""
        return self.flops_speedup if objective == "flops" else self.speedup

    def value(self, key: str) -> Any:
        """A result key's value (`OBJECTIVE_KEYS`, `val_acc`): how the searcher reads its metrics."""
        return getattr(self, key)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def paper(self) -> str | None:
        """The paper setting's name when this trial is one (origin `paper:<name>`), else None."""
        return self.origin[len(ORIGIN_PAPER):] if self.origin and self.origin.startswith(ORIGIN_PAPER) else None

    @property
    def accs(self) -> list[float]:
        """Every accuracy measured for this configuration: the search's seed first, then re-runs."""
        return ([] if self.val_acc is None else [self.val_acc]) + list(self.seed_accs)

    @property
    def mean_acc(self) -> float | None:
        """Accuracy averaged over every seed run (the search's val_acc when it was not re-run)."""
        return statistics.fmean(self.accs) if self.accs else None

    # -- what the recorder does ------------------------------------------------------------------
    def apply(self, report: EpochReport) -> None:
        """Fold one epoch report in (a restored trial re-reporting old epochs rewinds history)."""
        self.status = RUNNING
        self.epochs = report.epoch
        for name in ("val_acc", "train_seconds", "projected_seconds", "flops_per_image", "train_flops",
                     "planned_train_flops", "expected_train_flops", "flops_speedup", "paired_cost", "paired_speedup"):
            setattr(self, name, getattr(report, name))
        for name in ("chance_acc", "num_train", "num_val"):
            if getattr(report, name) is not None:
                setattr(self, name, getattr(report, name))
        self.resumed_from = report.resumed_from
        self.world_size = report.world_size
        self.history = [h for h in self.history if h["epoch"] < report.epoch]
        self.history.append({"epoch": report.epoch, "val_acc": report.epoch_val_acc,
                             "train_seconds": report.epoch_seconds})

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return encode(self, exclude=self._STORED_EXCLUDE)

    @classmethod
    def from_dict(cls, data: Any) -> "TrialRecord":
        """Validate one stored record (a `trials.jsonl` line). Unknown keys are an error only in
        type, not in name: newer files may carry more."""
        if not isinstance(data, dict):
            raise UserError(f"a trial record must be a JSON object, got {type(data).__name__}")
        if "trial_id" not in data:
            raise UserError("trial record has no 'trial_id'")
        status = data.get("status")
        if status not in STATUSES:
            raise UserError(f"trial status must be one of {', '.join(STATUSES)}; got {status!r}")
        record = decode(cls, data, "trial record", trial_id=str(data["trial_id"]), status=TrialStatus(status))
        if record.val_acc is not None and not 0.0 <= record.val_acc <= 1.0:
            raise UserError(f"val_acc must be a fraction in [0, 1], got {record.val_acc}")
        return record


@dataclass
class ShorterRun:
    """Dense trained with its whole schedule compressed to `epochs` (of the search's epochs), on the
    dense seeds: one point of the train-shorter curve (reports/shorter.py)."""

    epochs: int
    seconds: float  # mean measured training seconds over the seeds
    accs: list[float]  # final validation accuracy per dense seed, in seed order

    @property
    def mean_acc(self) -> float:
        return sum(self.accs) / len(self.accs)

    @property
    def total_seconds(self) -> float:
        """Training time of this length over all its seeds (what it cost the search)."""
        return self.seconds * len(self.accs)

    def speed(self, search_epochs: int) -> float:
        """Speedup over full-length dense: `search_epochs / epochs`. This is its paired speed (dense's
        step against itself, every example visited: the cost is exactly proportional to the epochs)
        and its FLOPs speedup alike; the measured wall seconds stay in `seconds`."""
        return search_epochs / self.epochs

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ShorterRun":
        run = decode(cls, data, "train_shorter entry")
        if not run.accs:
            raise UserError("a train_shorter entry has no accuracies")
        return run


@dataclass
class FidelityRun:
    """One configuration of the fidelity check trained longer: its trial (the dense baseline's id
    for dense), the accuracy the search ranked it on, and the longer run's accuracy and seconds."""

    trial_id: str
    search_acc: float  # mean over the dense seeds for finalists and dense, else the search run's
    acc: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> "FidelityRun":
        if not isinstance(data, dict):
            raise UserError(f"fidelity runs must be objects, got {type(data).__name__}")
        return decode(cls, data, "fidelity run")


@dataclass
class FidelityCheck:
    """The pick, its nearest rivals and dense trained for `epochs` (`factor` x the search's) on one
    seed: does the search's ranking survive longer training? (reports/fidelity.py reads it.)
    `skipped` says why it was not run (then `runs` is empty)."""

    factor: float
    epochs: int
    seed: int = 0  # older files: the search's seed 0
    runs: list[FidelityRun] = field(default_factory=list)
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> "FidelityCheck | None":
        return None if data is None else decode(cls, data, "fidelity")


@dataclass
class SideRun:
    """One finished run of a side phase (search/side.py: dense on its extra seeds, `--epochs auto`'s
    lengths, train-shorter, the finalists' seeds, the fidelity check), recorded in search.json the
    moment it finishes, so that a search stopped in the middle of a phase (Ctrl-C, a session's end,
    a killed machine) resumes without training it again. `phase` is the side run's Tune name,
    `epochs` the point's own length (None: the search's), `report` its last epoch report."""

    phase: str
    params: dict[str, Any]
    seed: int
    epochs: int | None
    report: EpochReport

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> "SideRun":
        return decode(cls, data, "side run")


@dataclass
class CurvePoint:
    """Dense trained for `epochs` (its whole schedule) on the search's seed: accuracy and seconds."""

    epochs: int
    acc: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> "CurvePoint":
        return decode(cls, data, "epochs_auto curve point")


@dataclass
class EpochsAuto:
    """`--epochs auto` (search/epochs_auto.py): dense's learning curve at doubling lengths, up to
    `max_epochs`, and the length the trials use (`chosen`; None until the curve has decided).
    `noise_pts` is the gain the last doubling had to beat."""

    max_epochs: int
    seed: int
    curve: list[CurvePoint] = field(default_factory=list)
    chosen: int | None = None
    noise_pts: float | None = None
    chance_acc: float | None = None
    num_val: int | None = None

    @property
    def seconds(self) -> float:
        """What the curve cost in training seconds."""
        return sum(p.seconds for p in self.curve)

    def to_dict(self) -> dict[str, Any]:
        return {**encode(self), "seconds": self.seconds}  # the cost, for readers of the file

    @classmethod
    def from_dict(cls, data: Any) -> "EpochsAuto | None":
        return None if data is None else decode(cls, data, "epochs_auto")


@dataclass
class ProxyClimb:
    """Is dense still climbing at the end of the proxy? (reports/noise.py `proxy_climb`): its
    validation accuracy's rise over the last `over_epochs` of its `epochs`, against the stated
    resolution. When dense was also trained longer on the same seed (the fidelity check, `--epochs
    auto`'s curve), `longer_*` say what the longer run gained (reports/noise.py `settle_climb`): a
    schedule that decays to its end rises most in its last third whether or not more epochs would
    help, so a gain within one run's noise at `longer_epochs` settles it. `still_learning` is the
    warning the report gives first."""

    epochs: int
    over_epochs: int
    rise_pts: float
    resolution_pts: float
    still_learning: bool
    longer_epochs: int | None = None  # the longer dense run the verdict rests on (None: none measured)
    longer_gain_pts: float | None = None  # its accuracy minus dense's at `epochs`, same seed
    longer_noise_pts: float | None = None  # one run's 90% noise, the gain it had to exceed

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ProxyClimb | None":
        return None if data is None else decode(cls, data, "proxy_still_learning")


@dataclass(frozen=True)
class SearchInfo:
    """What `search.json` says about the search as a whole. The search writes it (`write_search`)
    once per phase, each time a new value (`dataclasses.replace`; search/phases `Context.record`);
    the reports and a resumed search read it back (`read_search`)."""

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
    status: SearchStatus
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
    space_spec: dict[str, Any] = field(default_factory=dict)  # the space's full description (resume check)
    finalists: int = 0  # front configurations re-trained on the dense seeds
    dense_seed_accs: dict[str, float] = field(default_factory=dict)  # extra dense seeds, trained first
    chance_acc: float | None = None  # share of the most frequent validation class
    # dense with the schedule compressed to fewer epochs, on the dense seeds (reports/shorter.py)
    train_shorter: list[ShorterRun] = field(default_factory=list)
    # the pick and its rivals trained longer on one seed (None: not reached, or an older search)
    fidelity: FidelityCheck | None = None
    # epochs of the full training the final command and the economics plan for (`--full-epochs`)
    full_epochs: int = FULL_EPOCHS
    # the papers' settings tried right after dense: name -> searched point (`--papers first`)
    papers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # `--epochs auto`: dense's curve at doubling lengths and the chosen length (None: fixed --epochs)
    epochs_auto: EpochsAuto | None = None
    # dense's rise over the last third of its run against the resolution (None: not known yet)
    proxy_still_learning: ProxyClimb | None = None
    # Ray Train workers per trial (`--workers-per-trial`); files from before it had one process
    workers_per_trial: int = 1
    # every side phase's finished runs, as they finish (a resume mid-phase trains only the rest)
    side_runs: list[SideRun] = field(default_factory=list)
    version: int = SEARCH_VERSION

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @property
    def learned(self) -> bool | None:
        """Whether dense learned (None: not checked yet, e.g. an older or running search)."""
        return None if self.validity is None else bool(self.validity.get("learned"))

    @property
    def chance_threshold(self) -> float | None:
        """Accuracy a run needs to count as having learned anything (None: unknown)."""
        threshold = None if self.validity is None else self.validity.get("threshold")
        return None if threshold is None else number(threshold, "validity threshold")

    @classmethod
    def from_dict(cls, data: Any, path: Path) -> "SearchInfo":
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
            if objective not in OBJECTIVES:
                raise UserError(f"objective must be 'time' or 'flops', got {objective!r}")
            # fallbacks for files that predate a field and have no default of their own
            fallback = {"name": path.parent.name, "model": run_config.model, "dataset": run_config.dataset,
                        "space": "", "sampler": "", "budget": 0, "epochs": run_config.epochs, "grace_epochs": 0,
                        "reduction_factor": 0, "max_acc_drop": 0.5, "seed": 0, "command": "",
                        "status": SEARCH_RUNNING, "baseline_accs": [], "varied": []}
            return decode(cls, {**fallback, **{k: v for k, v in data.items() if v is not None or k not in fallback}},
                          "search", run_config=run_config, objective=objective,
                          full_epochs=_integer_or(data.get("full_epochs"), FULL_EPOCHS))  # older searches: DeiT's
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise UserError(f"{path}: malformed field ({exc})") from None


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


# -- search.json --------------------------------------------------------------------------------
def read_search(run_dir: str | Path) -> SearchInfo:
    """`search.json` as a `SearchInfo`; a missing or corrupt file is a `UserError` naming it."""
    path = Path(run_dir) / SEARCH_FILE
    if not path.is_file():
        raise UserError(f"not a run directory: {Path(run_dir)} has no {SEARCH_FILE} (expected the output of trilevel-search)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is corrupt: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason})") from None
    return SearchInfo.from_dict(data, path)


def write_search(run_dir: str | Path, info: SearchInfo) -> None:
    """Rewrite `search.json` atomically."""
    atomic_write_text(Path(run_dir) / SEARCH_FILE, json.dumps(info.to_dict(), indent=2))


# -- the one reader and the one writer of trials.jsonl ---------------------------------------------
def read_trials(run_dir: str | Path) -> tuple[dict[str, TrialRecord], list[str]]:
    """trial_id -> latest record, in file order of the latest state, and warnings (see the
    module's corruption policy). A missing file is an empty run."""
    path = Path(run_dir) / TRIALS_FILE
    if not path.exists():
        return {}, []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason})") from None
    numbered = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    records: dict[str, TrialRecord] = {}
    warnings: list[str] = []
    for index, (lineno, line) in enumerate(numbered):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if index == len(numbered) - 1:
                warnings.append(f"{path}: ignored half-written last line {lineno} (search crashed or still writing)")
                continue
            raise UserError(f"{path} line {lineno} is corrupt ({exc.msg}); fix or remove the file "
                            "(it is the search's record)") from None
        try:
            record = TrialRecord.from_dict(data)
        except UserError as exc:
            raise UserError(f"{path} line {lineno}: {exc}") from None
        records.pop(record.trial_id, None)  # keep file order of the latest state
        records[record.trial_id] = record
    return records, warnings


def load_records(run_dir: str | Path) -> dict[str, TrialRecord]:
    """trial_id -> latest record (the warnings of `read_trials` dropped: for the search itself)."""
    return read_trials(run_dir)[0]


def write_trials(run_dir: str | Path, records: Mapping[str, TrialRecord]) -> None:
    """Rewrite `trials.jsonl` atomically: a reader never sees half a file."""
    text = "".join(json.dumps(r.to_dict()) + "\n" for r in records.values())
    atomic_write_text(Path(run_dir) / TRIALS_FILE, text)


def load_run(run_dir: str | Path) -> Run:
    """Load a run directory. Raises `UserError` when it is missing, not a run, empty or corrupt."""
    path = Path(run_dir)
    if not path.exists():
        raise UserError(f"run directory not found: {path}")
    if not path.is_dir():
        raise UserError(f"not a directory: {path} (expected a run directory written by trilevel-search)")
    trials_path = path / TRIALS_FILE
    search = read_search(path)
    if search.learned is False and not trials_path.is_file():  # stopped after the dense seeds: a verdict, no trials
        return Run(path=path, search=search, trials=[])
    records, warnings = read_trials(path)
    if not records:
        raise UserError(f"no trials yet in {path} (search {search.status}){_progress(search)}")
    for trial in records.values():
        trial.seed_accs = list(search.finalist_accs.get(trial.trial_id, []))
    return Run(path=path, search=search, trials=list(records.values()), warnings=warnings)


def _progress(search: SearchInfo) -> str:
    """What a search without trials has done so far (it trains dense before any trial)."""
    done = []
    if search.epochs_auto is not None and search.epochs_auto.curve:
        curve = ", ".join(f"{p.epochs} epochs {p.acc * 100:.1f}%" for p in search.epochs_auto.curve)
        done.append(f"choosing the proxy length, dense so far: {curve}")
    if search.dense_seed_accs:
        seeds = ", ".join(f"seed {k} {v * 100:.1f}%" for k, v in sorted(search.dense_seed_accs.items()))
        done.append(f"dense on its extra seeds: {seeds}")
    if not done:
        return ""
    more = "; --resume continues it" if search.status == SEARCH_INTERRUPTED else ""
    return ": " + "; ".join(done) + more


# -- resume: lost and finished trials ------------------------------------------------------------
def mark_lost_trials(run_dir: str | Path) -> None:
    """Before a resume: flag trials recorded as running. Ray may not know them (they started after
    its last snapshot, then the driver died); the ones it restores are unflagged by the recorder."""
    records = load_records(run_dir)
    for r in records.values():
        if r.status == RUNNING:
            r.lost = True
    write_trials(run_dir, records)


def settle_lost_trials(run_dir: str | Path) -> None:
    """After the search: trials still flagged were lost with the driver and never re-run."""
    records = load_records(run_dir)
    for r in records.values():
        if r.lost and r.status == RUNNING:
            r.status, r.error = FAILED, LOST_ERROR
        r.lost = False
    write_trials(run_dir, records)


def finished_trial_ids(run_dir: str | Path) -> tuple[str, ...]:
    return tuple(tid for tid, r in load_records(run_dir).items() if r.finished)


def config_key(params: Mapping[str, Any]) -> str:
    """A configuration's identity (the searched values, order-free): the one rule for "the same
    configuration" that the searcher's repeat check and the search's side phases share."""
    return json.dumps(dict(params), sort_keys=True)


def _integer_or(value: Any, default: int) -> int:
    """An integer field whose absence (None or 0, as older files wrote it) means `default`."""
    return integer(value, "full_epochs") or default if value is not None else default
