"""Replay search strategies against a table of learning curves instead of training.

Each replayed search uses the search's own decision code and rules: `make_sampler` samplers
asked and told through an Optuna study (ask/tell), the live Ray scheduler object
(`MOASHAScheduler`, fed through its public `on_trial_result`/`on_trial_complete`) for early
stopping, the dense point evaluated first (the live search's `points_to_evaluate`) and never
stopped nor ranked (the scheduler's own `protected_config=dense`), early-stopped trials told as PRUNED and
full-length ones as COMPLETE with (final accuracy, full training seconds), and a configuration
never trained twice (the live `StudySearcher` itself, fed simulated records: a repeat proposal is
told the earlier outcome, COMPLETE values, PRUNED, or FAIL while that trial still runs, and the
sampler is asked again; 50 repeats in a row end the search). Only training is replaced: a trial's
epoch returns the table's accuracy and takes its measured seconds.

Choices (the live search runs 2 trials at once on CPU-2):

* Sampled points are snapped to the grid by giving Optuna a `CategoricalDistribution` over the
  grid values of each parameter, so every point it proposes is exactly a table row.
* Asynchronous search with `--workers` (default 2) over simulated time: a trial's epoch takes
  its table `train_seconds`; the next result is always the earliest-finishing epoch (ties by
  start order), and a freed worker asks the sampler at once. Fully deterministic for a seed.
* Cost reported to MO-ASHA (`projected_seconds`) = the configuration's full-length
  training seconds from the table at every epoch, what the live search reports as projected
  seconds. Speedup = dense full seconds / configuration full seconds.
* The single-objective baseline ("ASHA weighted sum") is the same scheduler with the one
  objective score = accuracy - `--weight` x (full seconds / dense full seconds), maximised both
  by ASHA and by a single-objective TPE. With one objective MOASHA's rule is ASHA's: continue
  iff in the top ceil(n / reduction_factor) of the rung. `--weight 0.1` (fixed before any replay
  was run): halving training time is worth 5 accuracy points.

Compute is counted in epochs (every reported epoch, stopped or not) and the search ends after
`--budget-epochs` (default: the grid's own total) or when the sampler has nothing new to propose.
The quality after k epochs is measured on the COMPLETED trials' (accuracy, speedup) points, three ways:

* **constrained ratio at delta** (the user's question, "how fast can I train at no more than delta
  points below dense?"): the best speedup among completed configurations within delta of dense's
  final accuracy, divided by the table's best within delta (delta = 0.5 and 1.0 points; 0 until one
  such configuration has completed, and dense itself counts, speedup 1);
* **hypervolume, user reference**: the area dominated above (dense accuracy - 10 points, speedup 1),
  divided by the table's, so configurations slower than dense or far below it add nothing;
* hypervolume with reference (0, 0), the measure of the tables before 2026-12-01 (it rewards
  chance-level corners), kept so they stay comparable.

Tables trained on several seeds are replayed on the mean curve over seeds (`--table-seed mean`, the
default for them): every configuration's accuracy and seconds per epoch averaged, the noise
within a configuration being what no strategy can act on. A table's `extras` (hand-set settings
of the papers, dense trained shorter; `tabular_grid.py --extras`) are fixed points, scored by the
same measures and listed beside the strategies: what a user gets without any search.

**Cross-seed score** (`--cross-seed`, the primary score since issue 23): a strategy searches one
training seed's rows of the table, and the configuration it would export, the pick its constrained
measure scores (the fastest completed configuration within delta points of dense on the searched
seed, `Table.pick`), is scored on the other seed's rows: its speedup there over that seed's best
within delta, 0 when it is no longer within delta of that seed's dense (`Table.score_pick`). That
is what a user gets when the pick is trained again. Both directions (search seed 0, score on 1,
and 1 on 0) and their mean (per search seed, then over search seeds) at 10 / 25 / 50% of the
table's epochs, with the seed-mean replay as the secondary score. References: the exhaustive
search of the searched seed (its best within delta, scored on the other seed), dense without
search, and the fixed settings (extras) on the scored seed. "X beats Y" only where X's mean
exceeds Y's by more than two standard errors of the difference in EACH direction; otherwise
within noise. The standard errors are over search seeds: a table has 2 training seeds, so the
directions, not the errors, carry the training noise. With `--cross-seed` the replay follows the
live search's rules also in two things the replays before it did not: each epoch reports the live
search's `projected_seconds` (seconds so far x planned FLOPs / FLOPs so far,
`Table.projected_seconds`; `--cost full` for the full-length seconds), and MO-ASHA ties accuracies
within the live search's epsilon (`reports.noise.run_sd` of dense on the table's other seeds,
floored by the binomial error of the validation set, as `search/runner.py` `_rung_epsilon`;
`--rung-epsilon none` to turn it off). Without `--cross-seed` both default to the earlier rules,
so the commands below reproduce their stored results.

Syne Tune's MOASHA (`syne_tune.optimizer.schedulers.multiobjective.moasha.MOASHA`, installed by the `bench`
extra) is driven as shipped: its own random suggestions and its own rungs, over the same grid
values (`syne_tune.config_space.choice`), minimising (1 - accuracy, full seconds). Two things are
the harness's, the same for every strategy: dense runs first at full length (not reported to the
scheduler, as ours protects it), and a configuration already tried is asked again (up to 50 times
in a row) instead of trained twice. Syne Tune samples from numpy's global generator, which the
replay seeds per seed.

    python benchmarks/replay.py --seeds 20 --out benchmarks/results/replay_digits_grace3  # search defaults
    python benchmarks/replay.py --seeds 20 --grace-period 1 --out benchmarks/results/replay_digits
    python benchmarks/replay.py --table benchmarks/data/grid5_digits.json --seeds 20 \
        --out benchmarks/results/replay_grid5_digits
    python benchmarks/replay.py --table benchmarks/data/grid5_search_digits.json --seeds 20 --cross-seed \
        --out benchmarks/results/replay_grid5_cross_seed

The default grace period is the search's own `--grace-epochs auto` (epoch 3 of 9 for the
tri-level space: its keep schedule has settled by then). Before that a rung compares
configurations that have barely started pruning (on the 27-point digits table epoch-1 accuracy
has Spearman 0.13 with final accuracy, epoch 4 has 0.84).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution

from trilevel.store.run_store import COMPLETED, OBJECTIVE_KEYS, STOPPED_EARLY, TrialRecord
from trilevel.reports.noise import run_sd
from trilevel.reports.selection import hypervolume
from trilevel.reports.pareto import hypervolume_2d
from trilevel.search.moasha import MOASHAScheduler
from trilevel.search.options import auto_grace
from trilevel.spaces import load_space
from trilevel.search.searcher import StudySearcher

# The live search's cost key (`paired_cost`, a fraction of dense's). The tables hold seconds, reported
# under that key: a monotone rescale of the same cost, and MO-ASHA normalises each front, so its
# decisions and the samplers' fronts are the same.
COST = OBJECTIVE_KEYS["time"]
CHECKPOINTS = (0.10, 0.25, 0.50)  # fractions of the grid's total epochs
TARGET_RATIO, TARGET_AT = 0.95, 0.25
DELTAS = (0.5, 1.0)  # accuracy points below dense a user accepts (constrained ratio)
HV_BELOW_DENSE = 10.0  # the user hypervolume's reference: dense accuracy minus these points, speedup 1


@dataclass(frozen=True)
class Strategy:
    """A sampler (`make_sampler` name) and an early-stopping rule: "moasha", "asha_ws" or None."""

    sampler: str
    stopping: str | None
    epsilon: float = 0.0  # MO-ASHA: accuracy differences within this many points are ties


STRATEGIES = {
    "MO-ASHA + TPE": Strategy("tpe", "moasha"),
    "MO-ASHA + NSGA-II": Strategy("nsga2", "moasha"),
    "MO-ASHA + random": Strategy("random", "moasha"),
    "TPE, no early stopping": Strategy("tpe", None),
    "random, no early stopping": Strategy("random", None),
    "ASHA weighted sum + TPE": Strategy("tpe", "asha_ws"),
    "Syne Tune MOASHA": Strategy("synetune", "synetune"),
}


class Table:
    """Learning curves of a full product grid: per configuration, per epoch accuracy and seconds.

    Rows are `{"params": {name: value}, "val_acc": [...], "train_seconds": [...]}` (the
    `configs` of a `tabular_grid.py` file). The dense row has every parameter at 1.0.
    """

    def __init__(self, rows: list[dict]):
        self.names = tuple(rows[0]["params"])
        self.choices = {n: sorted({r["params"][n] for r in rows}) for n in self.names}
        self.acc: dict[tuple, list[float]] = {}
        self.seconds: dict[tuple, list[float]] = {}
        self.flops: dict[tuple, list[float]] = {}  # per-epoch training FLOPs, where the rows have them
        for r in rows:
            key = self.key(r["params"])
            if key in self.acc:
                raise ValueError(f"configuration {r['params']} appears twice")
            self.acc[key], self.seconds[key] = list(r["val_acc"]), list(r["train_seconds"])
            if r.get("train_flops"):
                self.flops[key] = [float(f) for f in r["train_flops"]]
        self.epochs = len(rows[0]["val_acc"])
        if any(len(a) != self.epochs or len(self.seconds[k]) != self.epochs for k, a in self.acc.items()):
            raise ValueError("every configuration needs the same number of epochs of val_acc and seconds")
        missing = [k for k in itertools.product(*self.choices.values()) if k not in self.acc]
        if missing:
            raise ValueError(f"not a full grid: {len(missing)} configurations missing, e.g. {missing[0]}")
        self.dense = tuple(1.0 for _ in self.names)
        if self.dense not in self.acc:
            raise ValueError("the table has no dense configuration (every parameter 1.0)")
        self.extras: list[Extra] = []
        self.reference: tuple[float, float] | None = None  # (acc, seconds) of dense trained beside the extras
        self.seeds: list[int] = []
        self.rescaled: dict[str, float] = {}  # CPU -> the factor its rows' seconds were scaled by
        # Dense's final accuracy on every training seed of the file (not only those loaded), and the
        # validation set's size read off the accuracies: what the live search's rung epsilon needs.
        self.dense_seed_accs: dict[int, float] = {}
        self.num_val: int | None = num_val(a for curve in self.acc.values() for a in curve)

    @classmethod
    def load(cls, path: str | Path, seed: int | str | None = None) -> "Table":
        """The table's curves for one training seed (`tabular_grid.py --seeds`), or "mean": every
        configuration's curves averaged over the seeds. `seed` None means the only seed a table has,
        and the mean when it has several. Extras (`--extras`) are read the same way."""
        data = json.loads(Path(path).read_text())
        default = data["proxy"].get("seed", 0)
        seeds = sorted({row.get("seed", default) for row in data["configs"]})
        if seed is None:
            seed = seeds[0] if len(seeds) == 1 else "mean"
        if seed != "mean" and int(seed) not in seeds:
            raise SystemExit(f"{path} has seeds {seeds}, not {seed}")
        cpu = data.get("machine", {}).get("cpu", "unknown")
        configs, rescaled = _on_one_cpu(data["configs"], data.get("extras", []), cpu)
        table = cls(_select(configs, seed, default, key=lambda r: tuple(sorted(r["params"].items()))))
        table.rescaled = rescaled
        table.dense_seed_accs = {int(r.get("seed", default)): float(r["val_acc"][-1]) for r in data["configs"]
                                 if all(v == 1.0 for v in r["params"].values())}
        table.num_val = num_val(a for r in data["configs"] for a in r["val_acc"])
        extras = _select(data.get("extras", []), seed, default, key=lambda r: r["name"])
        # Extras are timed against the dense run trained beside them (kind "reference"), if there is
        # one: the grid may have been trained on another day. Their accuracy is compared with the
        # grid's dense, the same dense every strategy is scored against.
        reference = next((sum(r["train_seconds"]) for r in extras if r["kind"] == "reference"),
                         table.full_seconds(table.dense))
        table.extras = [Extra(r["name"], r["kind"], r.get("source", ""), r["val_acc"][-1],
                              reference / sum(r["train_seconds"])) for r in extras if r["kind"] != "reference"]
        table.reference = next(((r["val_acc"][-1], sum(r["train_seconds"])) for r in extras if r["kind"] == "reference"),
                               None)
        table.seeds = seeds if seed == "mean" else [int(seed)]
        return table

    def key(self, params: dict) -> tuple:
        return tuple(params[n] for n in self.names)

    def full_seconds(self, key: tuple) -> float:
        return float(sum(self.seconds[key]))

    def projected_seconds(self, key: tuple, epochs: int) -> float:
        """What the live search reports as `projected_seconds` after `epochs` epochs: the seconds
        measured so far x the run's planned FLOPs / the FLOPs trained so far (core/trainer.py
        `metrics`). The planned FLOPs are the row's trained ones (the plan is exact for the
        `forgetting` criterion the tables use, so at full length this is the full seconds). Rows
        without FLOPs report their full seconds at every epoch."""
        flops = self.flops.get(key)
        if not flops:
            return self.full_seconds(key)
        done = sum(flops[:epochs])
        return float(sum(self.seconds[key][:epochs]) * sum(flops) / done) if done > 0 else self.full_seconds(key)

    def rung_epsilon(self) -> float | None:
        """The live search's MO-ASHA epsilon on val_acc (search/runner.py `_rung_epsilon`): one run's
        spread, `reports.noise.run_sd` of dense's accuracy on the extra seeds, floored by the
        validation set's binomial error. A search on one training seed of the table has the file's
        other seeds as its extra dense seeds; a search on the mean has all of them. None (no ties)
        when there is no other seed, as the live search with one baseline seed."""
        others = [a for s, a in sorted(self.dense_seed_accs.items()) if len(self.seeds) != 1 or s not in self.seeds]
        sd = run_sd(others, self.num_val)
        return sd if sd > 0 else None

    def score_pick(self, key: tuple | None, delta: float) -> float:
        """A pick exported from a search (elsewhere) trained again on this table: its best speedup
        within `delta` points of this table's dense over this table's best (0: outside delta, or
        no pick)."""
        if key is None:
            return 0.0
        best = self.table_best(delta)
        return self.best_within([self.point(key)], delta) / best if best > 0 else 0.0

    def table_best(self, delta: float) -> float:
        """The best speedup within `delta` points of dense over the whole table (cached)."""
        cache = self.__dict__.setdefault("_table_best", {})
        if delta not in cache:
            cache[delta] = self.best_within([self.point(k) for k in self.acc], delta)
        return cache[delta]

    def pick(self, keys, delta: float) -> tuple | None:
        """The configuration a search that completed `keys` (in that order) exports under the replay's
        constrained measure: the fastest within `delta` points of dense (the first such on a tie;
        None when none is)."""
        floor = self.dense_acc - delta / 100 - 1e-12
        best = None
        for key in keys:
            acc, speed = self.point(key)
            if acc >= floor and (best is None or speed > self.point(best)[1]):
                best = key
        return best

    def point(self, key: tuple) -> tuple[float, float]:
        """(final accuracy, speedup over dense) of a full-length run."""
        return self.acc[key][-1], self.full_seconds(self.dense) / self.full_seconds(key)

    @property
    def total_epochs(self) -> int:
        return len(self.acc) * self.epochs

    def hypervolume(self) -> float:
        return hypervolume([self.point(k) for k in self.acc])

    @property
    def dense_acc(self) -> float:
        return self.acc[self.dense][-1]

    def user_hypervolume(self, points: list[tuple[float, float]]) -> float:
        """Area above (dense accuracy - HV_BELOW_DENSE points, speedup 1): what a user would accept."""
        return hypervolume_2d(points, (self.dense_acc - HV_BELOW_DENSE / 100, 1.0))

    def best_within(self, points: list[tuple[float, float]], delta: float) -> float:
        """The best speedup among `points` within `delta` accuracy points of dense (0: none)."""
        floor = self.dense_acc - delta / 100 - 1e-12
        return max((speed for acc, speed in points if acc >= floor), default=0.0)

    def measures(self) -> dict[str, Callable[[list], float]]:
        """Each reported measure of a set of completed points, as a fraction of the whole table's."""
        every = [self.point(k) for k in self.acc]
        def ratio(value: float, full: float) -> float:
            return value / full if full > 0 else 0.0  # e.g. nothing in the table beats dense by the user's measure

        out = {f"within {d:g}": (lambda pts, d=d, best=self.best_within(every, d): ratio(self.best_within(pts, d), best))
               for d in DELTAS}
        out["HV, user reference"] = lambda pts, full=self.user_hypervolume(every): ratio(self.user_hypervolume(pts), full)
        out["HV, (0, 0)"] = lambda pts, full=hypervolume(every): ratio(hypervolume(pts), full)
        return out


def num_val(accs, limit: int = 100_000) -> int | None:
    """The validation set's size, read off accuracies measured on it: the least common denominator
    of the values as fractions (each accuracy is correct / num_val). None when no denominator up to
    `limit` fits them all (e.g. averaged curves)."""
    import fractions

    values = {round(float(a), 9) for a in accs}
    n = 1
    for a in values:
        n = math.lcm(n, fractions.Fraction(a).limit_denominator(limit).denominator)
        if n > limit:
            return None
    return n if all(abs(a * n - round(a * n)) < 1e-6 for a in values) else None


@dataclass(frozen=True)
class Extra:
    """A fixed configuration outside the search (a paper's hand-set ratios, dense trained shorter)."""

    name: str
    kind: str  # "paper" | "shorter" ("reference", the dense run timed beside them, is not listed)
    source: str  # where the setting comes from (a repository file) or how it was derived
    acc: float
    speedup: float


def _on_one_cpu(rows: list[dict], extras: list[dict], default_cpu: str) -> tuple[list[dict], dict[str, float]]:
    """Grid rows timed on another CPU model, with their seconds rescaled to the CPU the grid's dense
    rows were timed on, and the factors ({cpu: factor}; empty when there was one CPU).

    A table built over several sessions may have been trained on different machines: the 125-point
    search grid's last 42 rows ran on an Intel Xeon whose epochs took 1.5x those of the AMD EPYC
    that trained the rest. A speedup is only meaningful against dense on the same CPU, so each CPU's
    rows are scaled by (dense seconds on the grid's CPU) / (dense seconds on theirs), dense on
    theirs being a grid dense row or the extras' dense reference trained there. Rows without a
    `cpu` were timed on the table's `machine`."""
    def cpu(r: dict) -> str:
        return r.get("cpu", default_cpu)

    is_dense = [r for r in rows if all(v == 1.0 for v in r["params"].values())]
    dense_seconds: dict[str, list[float]] = {}
    for r in is_dense + [r for r in extras if r.get("kind") == "reference"]:
        dense_seconds.setdefault(cpu(r), []).append(float(sum(r["train_seconds"])))
    cpus = {cpu(r) for r in rows}
    if len(cpus) == 1 or not is_dense:
        return rows, {}
    base = cpu(is_dense[0])
    missing = sorted(cpus - set(dense_seconds))
    if missing:
        raise SystemExit(f"rows timed on {missing[0]} have no dense run on that CPU to be timed against")
    scale = {c: float(np.mean(dense_seconds[base]) / np.mean(dense_seconds[c])) for c in sorted(cpus)}
    return ([{**r, "train_seconds": [t * scale[cpu(r)] for t in r["train_seconds"]]} for r in rows],
            {c: f for c, f in scale.items() if c != base})


def _select(rows: list[dict], seed: int | str, default: int, key) -> list[dict]:
    """The rows of one seed, or ("mean") one row per `key` with val_acc and train_seconds averaged
    epoch by epoch over the seeds it was trained on."""
    if seed != "mean":
        return [r for r in rows if r.get("seed", default) == int(seed)]
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return [{**group[0], "val_acc": np.mean([r["val_acc"] for r in group], 0).tolist(),
             "train_seconds": np.mean([r["train_seconds"] for r in group], 0).tolist()}
            for group in groups.values()]


@dataclass
class ScoredRecord(TrialRecord):
    """A run-store record with the single-objective baseline's score as one more metric."""

    score: float | None = None


@dataclass
class Trial:
    number: int
    params: dict
    epochs: int  # epochs trained (reported) when it ended or the budget ran out
    state: str  # "complete" | "pruned" | "running" (cut by the end of the budget)


@dataclass
class _TuneTrial:
    """What a Ray Tune scheduler reads of a trial (`trial_id`, `config`), for the simulated ones."""

    trial_id: str
    config: dict


@dataclass
class Replay:
    found: list[tuple[int, tuple[float, float]]]  # (epochs consumed when it completed, (acc, speedup))
    budget: int
    trials: list[Trial]
    repeats: int  # proposals of an already-tried configuration, told its outcome, not trained
    keys: list[tuple] = field(default_factory=list)  # the table key of each `found` point, same order

    def curve(self, measure: Callable[[list], float]) -> list[float]:
        """measure(points completed within k epochs) for k = 0 .. budget."""
        out, points, i = [], [], 0
        value = measure([])
        for k in range(self.budget + 1):
            changed = False
            while i < len(self.found) and self.found[i][0] <= k:
                points.append(self.found[i][1])
                i, changed = i + 1, True
            if changed:
                value = measure(points)
            out.append(value)
        return out

    def picks(self, table: Table, delta: float) -> list[tuple | None]:
        """The configuration the search would export after k epochs, k = 0 .. budget: the fastest
        completed one within `delta` points of dense on the searched `table` (`Table.pick`)."""
        out, best, i = [], None, 0
        for k in range(self.budget + 1):
            while i < len(self.found) and self.found[i][0] <= k:
                best = table.pick([self.keys[i]] if best is None else [best, self.keys[i]], delta)
                i += 1
            out.append(best)
        return out

    @property
    def hv(self) -> list[float]:
        """Hypervolume, reference (0, 0), after k epochs (not normalised)."""
        return self.curve(hypervolume)


class _SyneTuneProposer:
    """Syne Tune's MOASHA as shipped, behind the two calls the replay makes of a search: propose a
    configuration, and decide on a reported epoch. Dense is run by the harness and never reported."""

    REPEATS = 50  # as StudySearcher: this many repeat proposals in a row end the search

    def __init__(self, table: Table, seed: int, grace_period: int, reduction_factor: int):
        from syne_tune.config_space import choice
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        np.random.seed(seed)  # Syne Tune's suggest() and bracket choice draw from numpy's global generator
        self.table = table
        self.scheduler = MOASHA({n: choice(c) for n, c in table.choices.items()}, metrics=["error", COST],
                                do_minimize=True, time_attr="epoch", max_t=table.epochs,
                                grace_period=grace_period, reduction_factor=reduction_factor, random_seed=seed)
        self.tried = {table.dense}
        self.repeats = 0
        self.trials: dict[int, object] = {}

    def propose(self, number: int) -> dict | None:
        from syne_tune.backend.trial_status import Trial as SyneTrial

        for _ in range(self.REPEATS):
            config = self.scheduler.suggest().config
            key = self.table.key(config)
            if key not in self.tried:
                self.tried.add(key)
                trial = SyneTrial(trial_id=number, config=config, creation_time=None)
                self.scheduler.on_trial_add(trial)
                self.trials[number] = trial
                return config
            self.repeats += 1
        return None

    def result(self, number: int, key: tuple, epochs: int, complete: bool, cost: float) -> bool:
        """Report one epoch (`cost`: the harness's cost after it); True when the trial is to stop early."""
        if number not in self.trials:  # dense: run by the harness
            return False
        result = {"epoch": epochs, "error": 1.0 - self.table.acc[key][epochs - 1], COST: cost}
        if complete:
            self.scheduler.on_trial_complete(self.trials[number], result)
            return False
        return self.scheduler.on_trial_result(self.trials[number], result) == "STOP"


COSTS = ("full", "projected")  # what a trial reports as its cost at each epoch (see `replay`)


def replay(table: Table, strategy: Strategy, seed: int, budget_epochs: int, workers: int = 2,
           grace_period: int = 1, reduction_factor: int = 3, weight: float = 0.1, cost: str = "full",
           rung_epsilon: float | None = None) -> Replay:
    """One simulated search of `budget_epochs` epochs; deterministic for (table, strategy, seed).

    `cost`: what each epoch's report gives as the cost, "full" (the configuration's full-length
    seconds from the table, at every epoch) or "projected" (what the live search reports:
    `Table.projected_seconds`, the seconds so far projected by FLOPs). `rung_epsilon`: accuracy ties
    (fraction) for the MO-ASHA strategies without an epsilon of their own (`Table.rung_epsilon` is
    the live search's); a strategy's own `epsilon` takes precedence."""
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}, got {cost!r}")
    dense_seconds = table.full_seconds(table.dense)
    single = strategy.stopping == "asha_ws"
    syne = _SyneTuneProposer(table, seed, grace_period, reduction_factor) if strategy.stopping == "synetune" else None

    def seconds(key: tuple, epochs: int) -> float:
        return table.projected_seconds(key, epochs) if cost == "projected" else table.full_seconds(key)

    def score(key: tuple, acc: float, epochs: int) -> float:
        return acc - weight * seconds(key, epochs) / dense_seconds

    metric, mode = (["score"], ["max"]) if single else (["val_acc", COST], ["max", "min"])
    records: dict[str, ScoredRecord] = {}  # what the live search keeps in trials.jsonl, simulated
    searcher = None if syne else StudySearcher(  # the live search's own searcher: its repeat check, its tells
        space={n: CategoricalDistribution(c) for n, c in table.choices.items()}, metric=metric, mode=mode,
        sampler=strategy.sampler, seed=seed, points_to_evaluate=[dict(zip(table.names, table.dense))],
        max_epochs=table.epochs, records=lambda: records,
    )
    scheduler = None
    if strategy.stopping in ("moasha", "asha_ws"):
        objectives = {"score": "max"} if single else {"val_acc": "max", COST: "min"}
        ties = strategy.epsilon / 100 if strategy.epsilon else rung_epsilon
        epsilon = {"val_acc": ties} if ties and not single else None
        scheduler = MOASHAScheduler(objectives, table.epochs, grace_period, reduction_factor, time_attr="epoch",
                                    protected_config=dict(zip(table.names, table.dense)), epsilon=epsilon)
    events: list[tuple[float, int]] = []  # (finish time of the trial's next epoch, trial number)
    live: dict[int, tuple[tuple, Trial]] = {}
    trials: list[Trial] = []
    finished = False

    def outcome(key: tuple, epochs: int) -> dict:
        """What the trial reports after `epochs` epochs (cost: its full-length seconds or the projection)."""
        acc = table.acc[key][epochs - 1]
        values = {"score": score(key, acc, epochs)} if single else {"val_acc": acc, COST: seconds(key, epochs)}
        return {"epoch": epochs, **values}

    def start(now: float) -> None:
        nonlocal finished
        number = len(trials)
        if syne is not None:
            params = dict(zip(table.names, table.dense)) if number == 0 else syne.propose(number)
        else:
            params = searcher.suggest(str(number))
        if params is None or params == StudySearcher.FINISHED:
            finished = True
            return
        key = table.key(params)
        trials.append(Trial(number, dict(params), 0, "running"))
        records[str(number)] = ScoredRecord(str(number), params=dict(params))
        live[number] = (key, trials[-1])
        heapq.heappush(events, (now + table.seconds[key][0], number))

    for _ in range(workers):
        start(0.0)
    found: list[tuple[int, tuple[float, float]]] = []
    keys: list[tuple] = []
    consumed = 0
    while consumed < budget_epochs and events:
        now, number = heapq.heappop(events)  # equal times: the earlier-started trial first
        key, record = live[number]
        record.epochs += 1
        consumed += 1
        complete = record.epochs == table.epochs
        reported = outcome(key, record.epochs)
        tune_trial = _TuneTrial(str(number), record.params)
        if syne is not None:
            stop = syne.result(number, key, record.epochs, complete, seconds(key, record.epochs))
        elif scheduler is not None:
            stop = scheduler.on_trial_result(None, tune_trial, reported) == MOASHAScheduler.STOP
        else:
            stop = False
        if complete:
            record.state = "complete"
            if scheduler is not None:
                scheduler.on_trial_complete(None, tune_trial, reported)
            found.append((consumed, table.point(key)))
            keys.append(key)
        elif stop:
            record.state = "pruned"
        else:
            heapq.heappush(events, (now + table.seconds[key][record.epochs], number))
            continue
        if searcher is not None:
            stored = records[str(number)]
            stored.status = COMPLETED if record.state == "complete" else STOPPED_EARLY
            for name, value in reported.items():
                setattr(stored, "epochs" if name == "epoch" else name, value)
            searcher.on_trial_complete(str(number), reported)
        del live[number]
        if not finished:
            start(now)
    return Replay(found, budget_epochs, trials, syne.repeats if syne else searcher.repeats, keys)


def summarise(ratios: np.ndarray, at: list[int]) -> dict:
    """Mean and sample std over seeds of a measure at each epoch count in `at`."""
    return {
        str(k): {"mean": float(ratios[:, k].mean()), "std": float(ratios[:, k].std(ddof=1)) if len(ratios) > 1 else 0.0}
        for k in at
    }


def epochs_to_target(ratios: np.ndarray) -> list[int | None]:
    """Per seed, the first epoch count whose ratio reaches the target (None: never)."""
    out = []
    for row in ratios:
        hits = np.flatnonzero(row >= TARGET_RATIO - 1e-12)
        out.append(int(hits[0]) if hits.size else None)
    return out


PRIMARY = f"within {DELTAS[0]:g}"  # the measure the verdict and the plot use


def markdown(results: dict, at: list[int], grid_epochs: int, measure: str) -> str:
    head = [f"{round(100 * k / grid_epochs)}% ({k} ep)" for k in at[:-1]] + [f"end ({at[-1]} ep)"]
    lines = [
        "| strategy | " + " | ".join(head)
        + f" | epochs to {TARGET_RATIO:.0%} (median; seeds reaching) | trials (full-length) |",
        "|---" * (len(head) + 3) + "|",
    ]
    for name, r in results.items():
        m = r["measures"][measure]
        cells = [f"{m['summary'][str(k)]['mean']:.3f} ± {m['summary'][str(k)]['std']:.3f}" for k in at]
        reached = [e for e in m["epochs_to_target"] if e is not None]
        median = f"{statistics.median(reached):.0f}" if reached else "-"
        trials = f"{statistics.fmean(r['trials']):.1f} ({statistics.fmean(r['complete']):.1f})"
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {median}; {len(reached)}/{len(m['epochs_to_target'])} | {trials} |")
    return "\n".join(lines)


def extras_markdown(table: Table) -> str:
    """The fixed settings (no search) scored by the same measures, as fractions of the table's best."""
    if not table.extras:
        return ""
    measures = table.measures()
    lines = ["| setting (no search) | accuracy | speedup | " + " | ".join(measures) + " | source |",
             "|---" * (len(measures) + 4) + "|",
             f"| dense (the table's) | {100 * table.dense_acc:.2f}% | 1.00x | " + " | ".join("" for _ in measures)
             + f" | {table.full_seconds(table.dense):.1f} s |"]
    if table.reference:
        acc, seconds = table.reference
        lines.append(f"| dense, trained beside these (speed reference) | {100 * acc:.2f}% | 1.00x | "
                     + " | ".join("" for _ in measures) + f" | {seconds:.1f} s |")
    for e in table.extras:
        cells = [f"{fn([(e.acc, e.speedup)]):.3f}" for fn in measures.values()]
        lines.append(f"| {e.name} | {100 * e.acc:.2f}% | {e.speedup:.2f}x | " + " | ".join(cells) + f" | {e.source} |")
    return "\n".join(lines)


def verdict(results: dict, table: Table, grid_epochs: int) -> str:
    """The issue's target, stated from the means: at 25 % of the grid's epochs MO-ASHA + TPE reaches
    >= 0.95 of the best speedup within delta points, ahead of every other strategy and fixed setting.
    A difference within two standard errors of the difference of the means (over the search seeds)
    is reported as noise, not as ahead or behind."""
    k = int(TARGET_AT * grid_epochs)
    lines = []
    for measure in [m for m in table.measures() if m.startswith("within")]:
        stats = {n: r["measures"][measure]["summary"][str(k)] for n, r in results.items()}
        ours = stats.get("MO-ASHA + TPE")
        if ours is None:
            continue
        n = len(next(iter(results.values()))["trials"])
        fn = table.measures()[measure]
        ahead, behind, tied = [], [], []
        rivals = {name: (v["mean"], v["std"]) for name, v in stats.items() if name != "MO-ASHA + TPE"}
        rivals.update({e.name: (fn([(e.acc, e.speedup)]), 0.0) for e in table.extras})
        for name, (mean, std) in rivals.items():
            se = math.sqrt((ours["std"] ** 2 + std ** 2) / n)
            (behind if mean > ours["mean"] + 2 * se else ahead if mean < ours["mean"] - 2 * se else tied).append(
                f"{name} {mean:.3f}")
        lines.append(
            f"- {measure} points of dense, after {TARGET_AT:.0%} of the grid's epochs ({k}): MO-ASHA + TPE "
            f"{ours['mean']:.3f} ± {ours['std']:.3f} over {n} seeds (target {TARGET_RATIO}: "
            f"{'met' if ours['mean'] >= TARGET_RATIO else 'NOT met'}). Ahead of: {', '.join(ahead) or 'none'}. "
            f"Within noise (2 standard errors): {', '.join(tied) or 'none'}. Behind: {', '.join(behind) or 'none'}.")
    return "\n".join(lines)


def plot(results: dict, grid_epochs: int, path: Path, title: str, table: Table) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = ["HV, user reference", *[m for m in table.measures() if m.startswith("within")]]
    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 5), sharey=True)
    for ax, measure in zip(axes, measures):
        for name, r in results.items():
            ratios = np.asarray(r["measures"][measure]["curve"])
            x = np.arange(ratios.shape[1])
            mean, std = ratios.mean(0), ratios.std(0, ddof=1)
            ax.plot(x, mean, label=name)
            ax.fill_between(x, mean - std, mean + std, alpha=0.12)
        fn = table.measures()[measure]
        for e in table.extras:
            value = fn([(e.acc, e.speedup)])
            if value > 0.01:  # settings that score 0 (outside the constraint) are listed in the .md only
                ax.axhline(value, lw=0.8, ls="-." if e.kind == "paper" else ":", color="grey")
                ax.annotate(e.name, (grid_epochs * 0.98, value), fontsize=6, ha="right", va="bottom")
        for frac in CHECKPOINTS:
            ax.axvline(frac * grid_epochs, color="grey", lw=0.6, ls=":")
        ax.axhline(TARGET_RATIO, color="black", lw=0.6, ls="--")
        ax.set_xlabel(f"epochs consumed (full grid = {grid_epochs})")
        ax.set_title(measure + (" points of dense: best speedup / table's" if measure.startswith("within") else
                                " / table's"), fontsize=9)
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel("fraction of the whole table's")
    axes[-1].legend(loc="lower right", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


OURS = "MO-ASHA + TPE"


# --- Cross-seed scoring (issue 23): the pick exported from one training seed, trained again -------

def pick_scores(runs: list[Replay], searched: Table, scored: Table, delta: float, at: list[int]) -> dict:
    """Per search run and epoch count in `at`: the configuration the search on `searched` exports
    (`Replay.picks`), its score on `scored` (`Table.score_pick`), whether it is still within `delta`
    there, and its speedup there. Arrays of shape (runs, len(at)); picks as table keys (None: none)."""
    picks = [[every[k] for k in at] for every in (r.picks(searched, delta) for r in runs)]
    floor = scored.dense_acc - delta / 100 - 1e-12
    return {
        "score": np.array([[scored.score_pick(key, delta) for key in row] for row in picks]),
        "held": np.array([[key is not None and scored.point(key)[0] >= floor for key in row] for row in picks]),
        "speedup": np.array([[scored.point(key)[1] if key is not None else np.nan for key in row] for row in picks]),
        "picks": picks,
    }


def stats(values: np.ndarray, at: list[int]) -> dict:
    """Mean, sample sd and standard error over runs (rows) at each epoch count (columns), with the values."""
    n = len(values)
    out = {}
    for j, k in enumerate(at):
        col = values[:, j]
        sd = float(col.std(ddof=1)) if n > 1 else 0.0
        out[str(k)] = {"mean": float(col.mean()), "sd": sd, "se": sd / math.sqrt(n) if n else 0.0,
                       "values": np.round(col, 4).tolist()}
    return out


def constant_stats(value: float, at: list[int]) -> dict:
    """A fixed setting's or a deterministic reference's value: no spread over search seeds."""
    return {str(k): {"mean": float(value), "sd": 0.0, "se": 0.0, "values": [float(value)]} for k in at}


def direction(a: int, b: int) -> str:
    return f"{a}->{b}"


def cross_seed(tables: dict[int, Table], runs: dict[str, dict[int, list[Replay]]], at: list[int]) -> dict:
    """The cross-seed scores of every strategy (`runs[name][searched seed]`) and the references, on
    each constrained measure: per direction (search seed a -> score on seed b), the mean of the
    directions (per search seed, then over seeds), the same-seed score (search and score on a),
    the share of picks still within delta on the other seed and their speedup there."""
    seeds = sorted(tables)
    pairs = [(a, b) for a in seeds for b in seeds if a != b]
    out: dict = {"directions": [direction(a, b) for a, b in pairs], "checkpoints": at,
                 "names": list(next(iter(tables.values())).names), "measures": {}}
    for delta in DELTAS:
        measure = f"within {delta:g}"
        rows: dict[str, dict] = {}
        for name, by_seed in runs.items():
            row: dict = {"cross": {}, "same_seed": {}, "held": {}, "speedup_on_scored": {}, "picks": {}}
            per_direction = []
            for a, b in pairs:
                scored = pick_scores(by_seed[a], tables[a], tables[b], delta, at)
                per_direction.append(scored["score"])
                row["cross"][direction(a, b)] = stats(scored["score"], at)
                row["held"][direction(a, b)] = {str(k): float(scored["held"][:, j].mean()) for j, k in enumerate(at)}
                row["speedup_on_scored"][direction(a, b)] = {
                    str(k): (float(np.nanmean(col)) if not np.all(np.isnan(col)) else None)
                    for k, col in zip(map(str, at), scored["speedup"].T)}
                row["picks"][direction(a, b)] = [[list(key) if key is not None else None for key in r]
                                                 for r in scored["picks"]]
            row["cross"]["mean"] = stats(np.mean(per_direction, axis=0), at)
            for a in seeds:
                same = pick_scores(by_seed[a], tables[a], tables[a], delta, at)
                row["same_seed"][str(a)] = stats(same["score"], at)
            rows[name] = row
        references: dict[str, dict] = {}
        exhaustive, dense = {}, {}
        for a, b in pairs:
            whole = tables[a].pick(list(tables[a].acc), delta)
            exhaustive[direction(a, b)] = constant_stats(tables[b].score_pick(whole, delta), at)
            dense[direction(a, b)] = constant_stats(tables[b].score_pick(tables[b].dense, delta), at)
        references["exhaustive: every configuration of the searched seed"] = exhaustive
        references["dense (no search)"] = dense
        extra_names = [e.name for e in tables[seeds[0]].extras]
        for e_name in extra_names:
            by_dir = {}
            for a, b in pairs:
                e = next((x for x in tables[b].extras if x.name == e_name), None)
                value = tables[b].measures()[measure]([(e.acc, e.speedup)]) if e is not None else float("nan")
                by_dir[direction(a, b)] = constant_stats(value, at)
            references[e_name] = by_dir
        for ref in references.values():
            ref["mean"] = {k: {"mean": float(np.mean([ref[d][k]["mean"] for d in out["directions"]])), "sd": 0.0,
                               "se": 0.0, "values": []} for k in map(str, at)}
        out["measures"][measure] = {
            "strategies": rows,
            "references": {n: {"cross": r} for n, r in references.items()},
            "table_best": {str(s): tables[s].best_within([tables[s].point(k) for k in tables[s].acc], delta)
                           for s in seeds},
            "beats": {str(k): beats_pairs({**{n: r["cross"] for n, r in rows.items()}, **references},
                                          out["directions"], str(k)) for k in at},
        }
    return out


def beats(x: dict, y: dict, directions: list[str], k: str) -> bool:
    """X beats Y at epoch count `k` only where X's mean exceeds Y's by more than 2 standard errors
    of the difference (sqrt(se_x^2 + se_y^2), over the search seeds) in EACH direction."""
    return all(x[d][k]["mean"] - y[d][k]["mean"] > 2 * math.sqrt(x[d][k]["se"] ** 2 + y[d][k]["se"] ** 2)
               for d in directions)


def beats_pairs(rows: dict[str, dict], directions: list[str], k: str) -> list[list[str]]:
    """Every [winner, loser] pair for which `beats` holds (everything else: within noise)."""
    return [[x, y] for x in rows for y in rows if x != y and beats(rows[x], rows[y], directions, k)]


def compare(x: str, y: str, rows: dict[str, dict], directions: list[str], k: str) -> str:
    """'ahead', 'behind' or 'within noise': `beats` both ways."""
    if beats(rows[x], rows[y], directions, k):
        return "ahead"
    if beats(rows[y], rows[x], directions, k):
        return "behind"
    return "within noise"


def _pm(cell: dict) -> str:
    return f"{cell['mean']:.3f} ± {cell['se']:.3f}" if cell["se"] > 0 else f"{cell['mean']:.3f}"


def cross_markdown(cross: dict, at: list[int], grid_epochs: int, n: int, tables: dict[int, Table]) -> str:
    """The cross-seed tables and verdicts (primary), one section per constrained measure."""
    dirs = cross["directions"]
    fractions = [k for k in (int(f * grid_epochs) for f in CHECKPOINTS) if k in at]
    head = [f"{round(100 * k / grid_epochs)}%: {d.replace('->', '→')}" for k in fractions for d in [*dirs, "mean"]]
    sections = []
    for measure, block in cross["measures"].items():
        delta = measure.split()[1]
        best = ", ".join(f"seed {s} {v:.2f}x" for s, v in block["table_best"].items())
        lines = [f"### Cross-seed (primary), {measure} point(s): the pick of a search on one training seed, "
                 f"scored on the other seed's rows",
                 "",
                 f"The pick: the fastest completed configuration within {delta} point(s) of dense on the searched "
                 f"seed. Its score: its speedup over the scored seed's dense, if it is within {delta} point(s) of that "
                 f"dense (else 0), over the scored seed's best within {delta} ({best}). Mean ± standard error over "
                 f"{n} search seeds (a value without ± is the same for every search seed); a → b = searched on "
                 "seed a, scored on seed b; mean = both directions averaged per search seed. Rows in italics are "
                 "references, not searches: the exhaustive search of the searched seed, dense, the fixed settings "
                 "(scored on the scored seed).",
                 "",
                 "| strategy | " + " | ".join(head) + " |",
                 "|---" * (len(head) + 1) + "|"]
        rows = {**block["strategies"], **{f"*{name}*": r for name, r in block["references"].items()}}
        for name, r in rows.items():
            cells = [_pm(r["cross"][d][str(k)]) for k in fractions for d in [*dirs, "mean"]]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        k25 = str(int(TARGET_AT * grid_epochs))
        lines += ["", f"At {TARGET_AT:.0%} of the epochs ({k25}): the same pick scored on the seed it was searched on "
                  "(same seed), the share of picks still within delta on the other seed, and their mean speedup there:",
                  "",
                  "| strategy | " + " | ".join(f"same seed {s}" for s in sorted(tables))
                  + " | " + " | ".join(f"still within, {d.replace('->', '→')}" for d in dirs)
                  + " | " + " | ".join(f"speedup on the scored seed, {d.replace('->', '→')}" for d in dirs) + " |",
                  "|---" * (1 + len(tables) + 2 * len(dirs)) + "|"]
        for name, r in block["strategies"].items():
            same = [_pm(r["same_seed"][str(s)][k25]) for s in sorted(tables)]
            held = [f"{r['held'][d][k25]:.2f}" for d in dirs]
            speed = [f"{v:.2f}x" if (v := r["speedup_on_scored"][d][k25]) is not None else "-" for d in dirs]
            lines.append(f"| {name} | " + " | ".join(same + held + speed) + " |")
        comparable = {**{n: r["cross"] for n, r in block["strategies"].items()},
                      **{n: r["cross"] for n, r in block["references"].items()}}
        lines.append("")
        for k in fractions:
            verdicts: dict[str, list[str]] = {"ahead": [], "within noise": [], "behind": []}
            if OURS in comparable:
                for name in comparable:
                    if name != OURS:
                        verdicts[compare(OURS, name, comparable, dirs, str(k))].append(name)
            searches = block["strategies"]
            pairs = [f"{a} > {b}" for a, b in block["beats"][str(k)] if a in searches and b in searches]
            listed = {v: ", ".join(names) or "none" for v, names in verdicts.items()}
            lines.append(
                f"- {round(100 * k / grid_epochs)}% ({k} epochs): {OURS} is ahead (by > 2 standard errors in each "
                f"direction) of: {listed['ahead']}; within noise of: {listed['within noise']}; "
                f"behind: {listed['behind']}. Among the strategies, every pair that holds in both "
                f"directions: {'; '.join(pairs) or 'none'}.")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def cross_plot(cross: dict, grid_epochs: int, path: Path, title: str, curves: dict) -> None:
    """Mean over directions of the cross-seed score after k epochs, per strategy (± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(cross["measures"])
    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 5), sharey=True)
    for ax, measure in zip(np.atleast_1d(axes), measures):
        for name, c in curves[measure].items():
            x = np.arange(c.shape[1])
            mean, sd = c.mean(0), c.std(0, ddof=1) if len(c) > 1 else np.zeros(c.shape[1])
            ax.plot(x, mean, label=name)
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.12)
        ref = cross["measures"][measure]["references"]["exhaustive: every configuration of the searched seed"]
        value = next(iter(ref["cross"]["mean"].values()))["mean"]
        ax.axhline(value, color="grey", lw=0.8, ls="-.")
        ax.annotate("exhaustive search of the searched seed", (grid_epochs * 0.98, value), fontsize=6, ha="right",
                    va="bottom")
        for frac in CHECKPOINTS:
            ax.axvline(frac * grid_epochs, color="grey", lw=0.6, ls=":")
        ax.set_xlabel(f"epochs consumed (full grid = {grid_epochs})")
        ax.set_title(f"cross-seed, {measure} points: pick's speedup on the other seed / its best", fontsize=9)
        ax.set_ylim(0, 1.05)
    np.atleast_1d(axes)[0].set_ylabel("mean of both directions")
    np.atleast_1d(axes)[-1].legend(loc="lower right", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def strategy_result(table: Table, strategy: Strategy, runs: list[Replay], at: list[int]) -> dict:
    """A strategy's replays on one table, scored on that table (every measure, curves included)."""
    curves = {m: np.array([r.curve(fn) for r in runs]) for m, fn in table.measures().items()}
    return {
        "sampler": strategy.sampler, "stopping": strategy.stopping,
        "measures": {m: {"summary": summarise(c, at), "epochs_to_target": epochs_to_target(c),
                         "curve": np.round(c, 4).tolist()} for m, c in curves.items()},
        "trials": [len(r.trials) for r in runs],
        "complete": [sum(t.state == "complete" for t in r.trials) for r in runs],
        "repeats": [r.repeats for r in runs],
    }


def same_table_markdown(table: Table, results: dict, at: list[int], grid_epochs: int) -> str:
    """Every measure on the replayed table itself, the fixed settings and the verdict."""
    sections = [f"### {m}" + (" points of dense: best speedup found / the table's best" if m.startswith("within")
                              else " / the whole table's") + "\n\n" + markdown(results, at, grid_epochs, m)
                for m in table.measures()]
    if table.extras:
        sections.append("### Fixed settings, no search (same measures)\n\n" + extras_markdown(table))
    md = "\n\n".join(sections) + "\n\n" + verdict(results, table, grid_epochs)
    if table.rescaled:
        md += "\n- Timed on several CPUs: " + ", ".join(
            f"{c}'s seconds x {f:.3f}" for c, f in table.rescaled.items()) + " (dense on each CPU as the yardstick)."
    return md


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, default=Path("benchmarks/data/grid_digits.json"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/replay_digits"),
                   help="writes OUT.json, OUT.md and OUT.png")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--table-seed", default=None,
                   help="which training seed's curves, or 'mean' (default: the only seed, or the mean of several)")
    p.add_argument("--cross-seed", action="store_true",
                   help="primary score cross-seed: search each training seed of the table, score the exported pick "
                        "on the other seed(s); the seed-mean replay as secondary (needs a table with >= 2 seeds)")
    p.add_argument("--cost", choices=COSTS, default=None,
                   help="each epoch's reported cost: the full seconds from the table, or the live search's projected "
                        "seconds (default: projected with --cross-seed, else full, as the replays before it)")
    p.add_argument("--rung-epsilon", choices=("none", "live"), default=None,
                   help="MO-ASHA accuracy ties: none, or the live search's (Table.rung_epsilon) "
                        "(default: live with --cross-seed, else none)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--budget-epochs", type=int, default=None, help="default: the grid's total epochs")
    p.add_argument("--weight", type=float, default=0.1, help="ASHA weighted sum: acc - w x time/dense")
    p.add_argument("--grace-period", type=int, default=None,
                   help="MO-ASHA's first rung (default: the search's auto rule for the tri-level space)")
    p.add_argument("--reduction-factor", type=int, default=3, help="MO-ASHA's eta (search default 3)")
    p.add_argument("--epsilon", type=float, nargs="*", default=[],
                   help="also replay MO-ASHA + TPE with accuracy ties within these many points")
    p.add_argument("--only", help="comma-separated strategy names to replay (default: all)")
    args = p.parse_args()
    args.cost = args.cost or ("projected" if args.cross_seed else "full")
    args.rung_epsilon = args.rung_epsilon or ("live" if args.cross_seed else "none")
    strategies = dict(STRATEGIES)
    for eps in args.epsilon:
        strategies[f"MO-ASHA (ties within {eps:g} pts) + TPE"] = Strategy("tpe", "moasha", eps)
    if args.only:
        strategies = {n: strategies[n] for n in args.only.split(",")}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if args.cross_seed and args.table_seed is not None:
        p.error("--cross-seed searches every training seed of the table; leave out --table-seed")
    table = Table.load(args.table, "mean" if args.cross_seed else args.table_seed)
    tables = {s: Table.load(args.table, s) for s in table.seeds} if args.cross_seed else {}
    if args.cross_seed and len(tables) < 2:
        p.error(f"--cross-seed needs a table trained on at least 2 seeds; {args.table} has {table.seeds}")
    if args.grace_period is None:  # what `trilevel-search --grace-epochs auto` would use on this grid
        args.grace_period = auto_grace(load_space("tri-level").settled_at(), table.epochs, args.reduction_factor)
    grid_epochs = table.total_epochs
    budget = args.budget_epochs or grid_epochs
    at = [int(f * grid_epochs) for f in CHECKPOINTS if f * grid_epochs <= budget] + [budget]

    def eps(t: Table) -> float | None:
        return t.rung_epsilon() if args.rung_epsilon == "live" else None

    def run_all(t: Table, strategy: Strategy) -> list[Replay]:
        return [replay(t, strategy, seed, budget, args.workers, args.grace_period, args.reduction_factor,
                       args.weight, args.cost, eps(t)) for seed in range(args.seeds)]

    started = time.perf_counter()
    results, per_seed_runs = {}, {}
    for name, strategy in strategies.items():
        results[name] = strategy_result(table, strategy, run_all(table, strategy), at)
        if args.cross_seed:
            per_seed_runs[name] = {s: run_all(t, strategy) for s, t in tables.items()}
        print(f"{name}: {time.perf_counter() - started:.0f}s", flush=True)
    same_md = same_table_markdown(table, results, at, grid_epochs)
    every = [table.point(k) for k in table.acc]
    payload = {
        "table": str(args.table), "table_seeds": table.seeds, "seeds": args.seeds, "workers": args.workers,
        "budget_epochs": budget, "grid_epochs": grid_epochs, "checkpoints": at, "weight": args.weight,
        "grace_period": args.grace_period, "reduction_factor": args.reduction_factor,
        "cost": args.cost, "rung_epsilon": args.rung_epsilon,
        "dense_acc": table.dense_acc, "deltas": list(DELTAS), "hv_below_dense": HV_BELOW_DENSE,
        "rescaled_cpus": table.rescaled,
        "table_best": {m: (table.best_within(every, float(m.split()[1])) if m.startswith("within") else None)
                       for m in table.measures()},
        "grid_points": [dict(params=dict(zip(table.names, k)), acc=table.point(k)[0], speedup=table.point(k)[1])
                        for k in table.acc],
        "extras": [e.__dict__ for e in table.extras],
        "target": {"ratio": TARGET_RATIO, "at_fraction": TARGET_AT},
    }
    title = (f"{args.table.name} (table seeds {table.seeds}; {args.seeds} search seeds, {args.workers} workers, "
             f"grace {args.grace_period}, eta {args.reduction_factor}, cost {args.cost}, "
             f"rung epsilon {args.rung_epsilon})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.cross_seed:
        cross = cross_seed(tables, per_seed_runs, at)
        epsilons = {str(s): t.rung_epsilon() for s, t in tables.items()} | {"mean": table.rung_epsilon()}
        settings = (f"Rules as the live search: each epoch reports the {args.cost} seconds; "
                    "MO-ASHA ties accuracies within "
                    + (", ".join(f"{100 * v:.2f} pts (searching {s})" for s, v in epsilons.items() if v)
                       if args.rung_epsilon == "live" else "nothing")
                    + f" (num_val {table.num_val}); grace {args.grace_period}, eta {args.reduction_factor}, "
                      f"{args.workers} workers, {args.seeds} search seeds per table seed.")
        table_md = (settings + "\n\n" + cross_markdown(cross, at, grid_epochs, args.seeds, tables)
                    + "\n\n## Seed mean (secondary): searched and scored on the mean of the training seeds\n\n"
                    + same_md)
        payload |= {"mode": "cross-seed", "rung_epsilons": epsilons, "num_val": table.num_val, "cross_seed": cross,
                    "markdown": table_md, "replay_seconds": time.perf_counter() - started, "strategies": results}
        curves = {}
        for measure, block in cross["measures"].items():
            delta = float(measure.split()[1])
            pairs = [(a, b) for a in tables for b in tables if a != b]
            curves[measure] = {
                name: np.mean([[[tables[b].score_pick(key, delta) for key in r.picks(tables[a], delta)]
                                for r in by_seed[a]] for a, b in pairs], axis=0)
                for name, by_seed in per_seed_runs.items()}
        cross_plot(cross, grid_epochs, args.out.with_suffix(".png"), "Cross-seed replay on " + title, curves)
    else:
        table_md = same_md
        payload |= {"markdown": table_md, "replay_seconds": time.perf_counter() - started, "strategies": results}
        plot(results, grid_epochs, args.out.with_suffix(".png"), "Replayed searches on " + title, table)
    args.out.with_suffix(".json").write_text(json.dumps(payload))
    args.out.with_suffix(".md").write_text(table_md + "\n")
    print(table_md)


if __name__ == "__main__":
    main()
