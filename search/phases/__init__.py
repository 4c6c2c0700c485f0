"""The search as a pipeline of phases: each a module with a public `run(ctx, ...) -> typed result`.

`run_search` (search/runner.py) runs them in this order; each reads what the earlier ones recorded
(`ctx.info`, the run's SearchInfo) and returns its result, which the runner records in search.json
once, when the phase ends (`Context.record`). Every side run is also recorded the moment it
finishes (`Context.run_points`, search.json `side_runs`), so that a search stopped mid-phase, even
killed, resumes without repeating a finished run; a phase stopped by Ctrl-C / SIGTERM saves what it
has and raises KeyboardInterrupt.

  proxy_length   `--epochs auto`: dense at doubling lengths -> the trials' epochs
  dense_seeds    dense on the extra seeds: is there anything to rank, how large is the noise
  trials         the sampled trials: Ray Tune + an Optuna sampler + MO-ASHA
  reference      validity and resolution over every dense seed; is dense still climbing
  train_shorter  dense with its whole schedule compressed: would training shorter do as well
  finalists      the front's likely picks re-trained on the dense seeds, paired with dense
  fidelity       dense, the pick and its rivals trained longer: does the ranking hold
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trilevel.store.run_store import SearchInfo, SideRun, config_key, write_search
from trilevel.reports.noise import Validity
from trilevel.spaces import SearchSpace

from ..options import SearchOptions
from ..side import PointResult

@dataclass
class Context:
    """What every phase reads: the options, the space, the run directory and its SearchInfo, the
    progress line writer, and, once Ray runs, the trainable (with its resources) and how many
    trials run at once."""

    opts: SearchOptions
    space: SearchSpace
    run_dir: Path
    info: SearchInfo
    say: Callable[[str], None] = lambda line: None
    resources: Any = None  # Tune's per-trial resources
    trainable: Any = None  # the Tune trainable every phase after proxy_length trains with
    concurrency: int = 1
    grace: int = 1  # MO-ASHA's first rung, in epochs
    storage: Any = None  # search/storage.py `Storage` with --storage, else None

    @property
    def dense(self) -> dict[str, Any]:
        """The space's dense point (every ratio at 1)."""
        return self.space.dense_point()

    @property
    def extra_seeds(self) -> list[int]:
        """The dense baseline's extra seeds: the search's own dense trial is on `seed`."""
        return [self.opts.run.seed + 1 + i for i in range(self.opts.baseline_seeds - 1)]

    @property
    def all_seeds(self) -> list[int]:
        """Every dense seed, the search's own first."""
        return [self.opts.run.seed, *self.extra_seeds]

    @property
    def tune_root(self) -> str:
        """Where Ray Tune keeps the trials' experiment (and, below it, one per side phase): the run
        directory, or the run's folder in `--storage`."""
        return self.storage.tune_root if self.storage is not None else str(self.run_dir)

    def mirror(self) -> None:
        """Copy the record files to `--storage` (no-op without one; a storage that does not answer
        costs one line, never a record)."""
        if self.storage is not None:
            self.storage.push(self.run_dir, self.say)

    def run_points(self, points: list[dict], name: str, trainable=None, concurrency: int | None = None) -> list:
        """Train side points (search/side.py `run_points`) in this run's Tune storage. Each run that
        finishes is recorded in search.json at once (`side_runs`), and a point recorded before (a
        resume after a stop mid-phase) comes back from that record instead of training again.
        Raises `StorageDown` when a run failed, or Tune itself, because `--storage` stopped
        answering."""
        from ..side import run_points

        saved = {self._side_id(name, r.params, r.seed, r.epochs): r for r in self.info.side_runs}
        kept, todo = [], []
        for point in points:
            run = saved.get(self._side_id(name, point, point["seed"], point.get("epochs")))
            result = run and PointResult(run.params, run.seed, run.epochs, run.report, None)
            if result is not None and result.finished(result.epochs or self.opts.run.epochs):
                kept.append(result)
            else:
                todo.append(point)
        if kept:
            self.say(f"{len(kept)} of the {len(points)} {name} run(s) finished before: kept, not trained again")
        if not todo:
            return kept
        if concurrency is None and self.opts.workers_per_trial > 1:
            concurrency = self.concurrency  # such trials ask Tune for no CPU: it would start them all at once
        try:
            results = run_points(self.trainable if trainable is None else trainable, todo, name, self.tune_root,
                                 concurrency, on_complete=lambda run: self._save_side_run(name, run))
        except Exception:
            self.check_storage()
            raise
        if any(r.error is not None for r in results):
            self.check_storage()
        return kept + results

    def _save_side_run(self, name: str, run: PointResult) -> None:
        """Record one finished side run in search.json (and `--storage`) as it finishes."""
        if run.finished(run.epochs or self.opts.run.epochs):
            self.record(side_runs=[*self.info.side_runs, SideRun(name, run.params, run.seed, run.epochs, run.report)])

    @staticmethod
    def _side_id(name: str, params: dict, seed: int, epochs: int | None) -> tuple:
        """A side point's identity: its phase, searched values (`config_key`), seed and own length."""
        searched = {k: v for k, v in params.items() if k not in ("seed", "epochs")}
        return name, config_key(searched), int(seed), epochs

    def check_storage(self) -> None:
        """After an error: raise `StorageDown` if `--storage` does not answer (the error was its)."""
        from ..storage import StorageDown

        if self.storage is not None and not self.storage.answers():
            raise StorageDown(self.storage.uri)

    def make_trainable(self, finished=()):
        """The Tune trainable for this search's base run config and fixed values, with resources;
        `finished`: trial ids a restored Tuner must not train again."""
        from ray import tune

        from ..cluster import worker_resources
        from ..trainable import run_trial
        from ..workers import TRAIN_RUNS

        workers = {}
        if self.opts.workers_per_trial > 1:
            workers = dict(workers=self.opts.workers_per_trial, worker_resources=worker_resources(self.opts),
                           train_storage=f"{self.tune_root}/{TRAIN_RUNS}")
        return tune.with_resources(tune.with_parameters(
            run_trial, base=self.opts.run.to_dict(), fixed=dict(self.space.fixed), finished=tuple(finished),
            **workers), self.resources)

    def record(self, **fields: Any) -> None:
        """Record `fields` (with anything staged) in a new SearchInfo and write search.json once
        (a phase's result, or the progress a resume continues from); then the records are mirrored
        to `--storage`. Read `ctx.info` afresh after it: the SearchInfo is immutable."""
        self.stage(**fields)
        write_search(self.run_dir, self.info)
        self.mirror()

    def stage(self, **fields: Any) -> None:
        """A new SearchInfo with `fields` set, written with the phase's next `record`."""
        names = {f.name for f in dataclasses.fields(self.info)}
        unknown = set(fields) - names
        if unknown:
            raise TypeError(f"SearchInfo has no field(s) {sorted(unknown)}")
        self.info = dataclasses.replace(self.info, **fields)

    def note_data(self, report) -> None:
        """The data's sizes and chance level, as a dense run measured them (recorded with the
        phase's next `record`)."""
        self.stage(**{key: getattr(report, key) for key in ("chance_acc", "num_train", "num_val")
                      if getattr(report, key) is not None})

    def params(self, trial) -> dict[str, Any]:
        """The searched values of a recorded trial (the point the sampler proposed)."""
        config = trial.config.to_dict()
        return {name: config[name] for name in sorted(self.space.params)}


class NotLearned(Exception):
    """Dense did not learn in the proxy: nothing may be ranked or exported."""

    def __init__(self, verdict: Validity):
        super().__init__("dense did not learn")
        self.verdict = verdict
