"""Optuna samplers through Ray Tune, with early-stopped trials told to Optuna as pruned.

Ray's `OptunaSearch` tells Optuna a trial stopped by a scheduler as COMPLETE with its truncated
values, which puts half-trained trials on the Pareto front. Here such trials are PRUNED and
failed ones FAIL, so `study.best_trials` holds only trials that ran the full length.

The budget and "never twice the same configuration" are enforced against our own record
(`trials.jsonl`), not Ray's experiment snapshot: after a kill -9 Ray restores its state as of its
last snapshot and may have forgotten trials that finished since, and a seeded sampler restored
from that snapshot proposes the same points again. Such a repeat is told the recorded outcome and
skipped, so nothing is re-run and the study still learns from it.
"""

from __future__ import annotations

import json
import logging

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from trilevel.core.errors import UserError, suggest

from .constants import SAMPLERS

logger = logging.getLogger(__name__)


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler by short name."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}{suggest(name, SAMPLERS)}; use {', '.join(SAMPLERS)}")


class ParetoOptunaSearch(OptunaSearch):
    """OptunaSearch that marks trials which did not reach `max_epochs` as PRUNED."""

    def __init__(self, *args, max_epochs: int, epoch_key: str = "epoch", run_dir: str | None = None,
                 budget: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_epochs = max_epochs
        self.epoch_key = epoch_key
        self.run_dir = run_dir
        self.budget = budget

    def suggest(self, trial_id: str):
        if self.run_dir is None:
            return super().suggest(trial_id)
        from .recorder import load_records  # the search's own record of every trial

        records = load_records(self.run_dir)
        if self.budget is not None and len(records) >= self.budget:
            return Searcher.FINISHED
        seen = {_key(r["params"]): r for r in records.values()}
        for _ in range(50):
            params = super().suggest(trial_id)
            record = seen.get(_key(params))
            if record is None:
                return params
            self._tell_recorded(trial_id, record)  # a repeat: learn its outcome, ask again
        return Searcher.FINISHED

    def _tell_recorded(self, trial_id: str, record: dict) -> None:
        ot_trial = self._ot_trials.pop(trial_id)
        if record["status"] == "completed" and record.get("val_acc") is not None:
            cost = record.get(self.metric[1])
            if cost is not None:
                self._ot_study.tell(ot_trial, [record["val_acc"], cost])
                return
        state = TrialState.PRUNED if record["status"] == "stopped_early" else TrialState.FAIL
        self._ot_study.tell(ot_trial, None, state=state)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        values = [result.get(m) for m in self.metric] if result else None
        if error or not values or any(v is None for v in values):
            state, values = TrialState.FAIL, None
        elif result.get(self.epoch_key, 0) < self.max_epochs:
            state, values = TrialState.PRUNED, None
        else:
            state = TrialState.COMPLETE
        try:
            self._ot_study.tell(ot_trial, values, state=state)
        except Exception as exc:  # e.g. NaN values: Optuna refuses them
            logger.warning("optuna refused trial %s: %s", trial_id, exc)
            self._ot_study.tell(ot_trial, None, state=TrialState.FAIL)
        self._completed_trials.add(trial_id)

    @property
    def study(self) -> optuna.Study:
        return self._ot_study


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)
