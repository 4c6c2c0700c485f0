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
`--budget-epochs` (default: the grid's own total) or when the sampler has nothing new to propose. The quality after k epochs
is the hypervolume of the COMPLETED trials' (accuracy, speedup) points, reference (0, 0), divided
by that of the whole grid (`trilevel.reports.selection.hypervolume`).

    python benchmarks/replay.py --seeds 20 --out benchmarks/results/replay_digits_grace3  # search defaults
    python benchmarks/replay.py --seeds 20 --grace-period 1 --out benchmarks/results/replay_digits
    python benchmarks/replay.py --table benchmarks/data/grid5_digits.json --seeds 20 \
        --out benchmarks/results/replay_grid5_digits

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
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution

from trilevel.core.run_store import COMPLETED, OBJECTIVE_KEYS, STOPPED_EARLY, TrialRecord
from trilevel.reports.selection import hypervolume
from trilevel.search.moasha import MOASHAScheduler
from trilevel.search.runner import auto_grace
from trilevel.spaces import load_space
from trilevel.search.searcher import StudySearcher

COST = OBJECTIVE_KEYS["time"]  # the live search's cost key: full-length projected seconds
CHECKPOINTS = (0.10, 0.25, 0.50)  # fractions of the grid's total epochs
TARGET_RATIO, TARGET_AT = 0.95, 0.25


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
        for r in rows:
            key = self.key(r["params"])
            if key in self.acc:
                raise ValueError(f"configuration {r['params']} appears twice")
            self.acc[key], self.seconds[key] = list(r["val_acc"]), list(r["train_seconds"])
        self.epochs = len(rows[0]["val_acc"])
        if any(len(a) != self.epochs or len(self.seconds[k]) != self.epochs for k, a in self.acc.items()):
            raise ValueError("every configuration needs the same number of epochs of val_acc and seconds")
        missing = [k for k in itertools.product(*self.choices.values()) if k not in self.acc]
        if missing:
            raise ValueError(f"not a full grid: {len(missing)} configurations missing, e.g. {missing[0]}")
        self.dense = tuple(1.0 for _ in self.names)
        if self.dense not in self.acc:
            raise ValueError("the table has no dense configuration (every parameter 1.0)")

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> "Table":
        """The table's curves for one training seed (`tabular_grid.py --seeds`); `seed` None
        means the only seed a table has."""
        data = json.loads(Path(path).read_text())
        default = data["proxy"].get("seed", 0)
        seeds = sorted({row.get("seed", default) for row in data["configs"]})
        if seed is None:
            if len(seeds) > 1:
                raise SystemExit(f"{path} has seeds {seeds}: choose one with --table-seed")
            seed = seeds[0]
        return cls([row for row in data["configs"] if row.get("seed", default) == seed])

    def key(self, params: dict) -> tuple:
        return tuple(params[n] for n in self.names)

    def full_seconds(self, key: tuple) -> float:
        return float(sum(self.seconds[key]))

    def point(self, key: tuple) -> tuple[float, float]:
        """(final accuracy, speedup over dense) of a full-length run."""
        return self.acc[key][-1], self.full_seconds(self.dense) / self.full_seconds(key)

    @property
    def total_epochs(self) -> int:
        return len(self.acc) * self.epochs

    def hypervolume(self) -> float:
        return hypervolume([self.point(k) for k in self.acc])


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
    hv: list[float]  # hv[k]: hypervolume of the completed trials after k epochs consumed
    trials: list[Trial]
    repeats: int  # proposals of an already-tried configuration, told its outcome, not trained


def replay(table: Table, strategy: Strategy, seed: int, budget_epochs: int, workers: int = 2,
           grace_period: int = 1, reduction_factor: int = 3, weight: float = 0.1) -> Replay:
    """One simulated search of `budget_epochs` epochs; deterministic for (table, strategy, seed)."""
    dense_seconds = table.full_seconds(table.dense)
    single = strategy.stopping == "asha_ws"

    def score(key: tuple, acc: float) -> float:
        return acc - weight * table.full_seconds(key) / dense_seconds

    metric, mode = (["score"], ["max"]) if single else (["val_acc", COST], ["max", "min"])
    records: dict[str, ScoredRecord] = {}  # what the live search keeps in trials.jsonl, simulated
    searcher = StudySearcher(  # the live search's own searcher: its repeat check, its tells
        space={n: CategoricalDistribution(c) for n, c in table.choices.items()}, metric=metric, mode=mode,
        sampler=strategy.sampler, seed=seed, points_to_evaluate=[dict(zip(table.names, table.dense))],
        max_epochs=table.epochs, records=lambda: records,
    )
    scheduler = None
    if strategy.stopping is not None:
        objectives = {"score": "max"} if single else {"val_acc": "max", COST: "min"}
        epsilon = {"val_acc": strategy.epsilon / 100} if strategy.epsilon and not single else None
        scheduler = MOASHAScheduler(objectives, table.epochs, grace_period, reduction_factor, time_attr="epoch",
                                    protected_config=dict(zip(table.names, table.dense)), epsilon=epsilon)
    events: list[tuple[float, int]] = []  # (finish time of the trial's next epoch, trial number)
    live: dict[int, tuple[tuple, Trial]] = {}
    trials: list[Trial] = []
    finished = False

    def outcome(key: tuple, epochs: int) -> dict:
        """What the trial reports after `epochs` epochs (cost: the full-length projection)."""
        acc = table.acc[key][epochs - 1]
        values = {"score": score(key, acc)} if single else {"val_acc": acc, COST: table.full_seconds(key)}
        return {"epoch": epochs, **values}

    def start(now: float) -> None:
        nonlocal finished
        number = len(trials)
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
    points: list[tuple[float, float]] = []
    hv = [0.0]
    while len(hv) <= budget_epochs and events:
        now, number = heapq.heappop(events)  # equal times: the earlier-started trial first
        key, record = live[number]
        record.epochs += 1
        reported = outcome(key, record.epochs)
        decision = None
        tune_trial = _TuneTrial(str(number), record.params)
        if scheduler is not None:
            decision = scheduler.on_trial_result(None, tune_trial, reported)
        if record.epochs == table.epochs:
            record.state = "complete"
            if scheduler is not None:
                scheduler.on_trial_complete(None, tune_trial, reported)
            points.append(table.point(key))
        elif decision == MOASHAScheduler.STOP:
            record.state = "pruned"
        else:
            heapq.heappush(events, (now + table.seconds[key][record.epochs], number))
            hv.append(hv[-1])
            continue
        stored = records[str(number)]
        stored.status = COMPLETED if record.state == "complete" else STOPPED_EARLY
        for name, value in reported.items():
            setattr(stored, "epochs" if name == "epoch" else name, value)
        searcher.on_trial_complete(str(number), reported)
        del live[number]
        hv.append(hypervolume(points) if record.state == "complete" else hv[-1])
        if not finished:
            start(now)
    hv += [hv[-1]] * (budget_epochs + 1 - len(hv))  # the search ended early: nothing more found
    return Replay(hv, trials, searcher.repeats)


def summarise(ratios: np.ndarray, at: list[int]) -> dict:
    """Mean and sample std over seeds of the HV ratio at each epoch count in `at`."""
    return {
        str(k): {"mean": float(ratios[:, k].mean()), "std": float(ratios[:, k].std(ddof=1)) if len(ratios) > 1 else 0.0}
        for k in at
    }


def epochs_to_target(ratios: np.ndarray) -> list[int | None]:
    """Per seed, the first epoch count whose HV ratio reaches the target (None: never)."""
    out = []
    for row in ratios:
        hits = np.flatnonzero(row >= TARGET_RATIO - 1e-12)
        out.append(int(hits[0]) if hits.size else None)
    return out


def markdown(results: dict, at: list[int], grid_epochs: int) -> str:
    head = [f"{round(100 * k / grid_epochs)}% ({k} ep)" for k in at[:-1]] + [f"end ({at[-1]} ep)"]
    lines = [
        "| strategy | " + " | ".join(f"HV ratio at {h}" for h in head)
        + f" | epochs to {TARGET_RATIO:.0%} HV (median; seeds reaching) | trials (full-length) |",
        "|---" * (len(head) + 3) + "|",
    ]
    for name, r in results.items():
        cells = [f"{r['summary'][str(k)]['mean']:.3f} ± {r['summary'][str(k)]['std']:.3f}" for k in at]
        reached = [e for e in r["epochs_to_target"] if e is not None]
        median = f"{statistics.median(reached):.0f}" if reached else "-"
        trials = f"{statistics.fmean(r['trials']):.1f} ({statistics.fmean(r['complete']):.1f})"
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {median}; {len(reached)}/{len(r['epochs_to_target'])} | {trials} |")
    return "\n".join(lines)


def verdict(results: dict, at: list[int], grid_epochs: int) -> str:
    """The brief's two targets, stated from the means: >= 95 % HV at <= 25 % epochs; beats random."""
    mo, rnd = results["MO-ASHA + TPE"], results["random, no early stopping"]
    k = int(TARGET_AT * grid_epochs)
    ratio = mo["summary"][str(k)]["mean"]
    reached = sum(e is not None and e <= k for e in mo["epochs_to_target"])
    wins = [c for c in at if mo["summary"][str(c)]["mean"] > rnd["summary"][str(c)]["mean"]]
    return "\n".join([
        f"- MO-ASHA + TPE after {TARGET_AT:.0%} of the grid's epochs ({k}): mean HV ratio {ratio:.3f} "
        f"(target {TARGET_RATIO}): {'met' if ratio >= TARGET_RATIO else 'NOT met'}; "
        f"{reached}/{len(mo['epochs_to_target'])} seeds reach it by then.",
        f"- MO-ASHA + TPE has a higher mean HV ratio than random search (no early stopping) at "
        f"{len(wins)}/{len(at)} checkpoints" + (f" ({', '.join(map(str, wins))} epochs)." if wins else "."),
    ])


def plot(results: dict, grid_epochs: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in results.items():
        ratios = np.asarray(r["hv_ratio"])
        x = np.arange(ratios.shape[1])
        mean, std = ratios.mean(0), ratios.std(0, ddof=1)
        ax.plot(x, mean, label=name)
        ax.fill_between(x, mean - std, mean + std, alpha=0.15)
    for frac in CHECKPOINTS:
        ax.axvline(frac * grid_epochs, color="grey", lw=0.6, ls=":")
    ax.axhline(TARGET_RATIO, color="black", lw=0.6, ls="--")
    ax.set_xlabel(f"epochs consumed (full grid = {grid_epochs}; dotted: 10 / 25 / 50 %)")
    ax.set_ylabel("hypervolume / grid hypervolume")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, default=Path("benchmarks/data/grid_digits.json"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/replay_digits"),
                   help="writes OUT.json, OUT.md and OUT.png")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--table-seed", type=int, default=None, help="which training seed's curves (tables with several)")
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
    strategies = dict(STRATEGIES)
    for eps in args.epsilon:
        strategies[f"MO-ASHA (ties within {eps:g} pts) + TPE"] = Strategy("tpe", "moasha", eps)
    if args.only:
        strategies = {n: strategies[n] for n in args.only.split(",")}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    table = Table.load(args.table, args.table_seed)
    if args.grace_period is None:  # what `trilevel-search --grace-epochs auto` would use on this grid
        args.grace_period = auto_grace(load_space("tri-level").settled_at(), table.epochs, args.reduction_factor)
    grid_epochs = table.total_epochs
    budget = args.budget_epochs or grid_epochs
    at = [int(f * grid_epochs) for f in CHECKPOINTS if f * grid_epochs <= budget] + [budget]
    grid_hv = table.hypervolume()
    started = time.perf_counter()
    results = {}
    for name, strategy in strategies.items():
        runs = [replay(table, strategy, seed, budget, args.workers, args.grace_period, args.reduction_factor,
                       args.weight) for seed in range(args.seeds)]
        ratios = np.array([r.hv for r in runs]) / grid_hv
        results[name] = {
            "sampler": strategy.sampler, "stopping": strategy.stopping,
            "summary": summarise(ratios, at),
            "epochs_to_target": epochs_to_target(ratios),
            "trials": [len(r.trials) for r in runs],
            "complete": [sum(t.state == "complete" for t in r.trials) for r in runs],
            "repeats": [r.repeats for r in runs],
            "hv_ratio": np.round(ratios, 4).tolist(),
        }
        print(f"{name}: {time.perf_counter() - started:.0f}s", flush=True)
    table_md = markdown(results, at, grid_epochs) + "\n\n" + verdict(results, at, grid_epochs)
    payload = {
        "table": str(args.table), "table_seed": args.table_seed, "seeds": args.seeds, "workers": args.workers, "budget_epochs": budget,
        "grid_epochs": grid_epochs, "checkpoints": at, "weight": args.weight,
        "grace_period": args.grace_period, "reduction_factor": args.reduction_factor,
        "grid_hypervolume": grid_hv,
        "grid_points": [dict(params=dict(zip(table.names, k)), acc=table.point(k)[0], speedup=table.point(k)[1])
                        for k in table.acc],
        "target": {"hv_ratio": TARGET_RATIO, "at_fraction": TARGET_AT},
        "markdown": table_md, "replay_seconds": time.perf_counter() - started, "strategies": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(payload))
    args.out.with_suffix(".md").write_text(table_md + "\n")
    plot(results, grid_epochs, args.out.with_suffix(".png"),
         f"Replayed searches on {args.table.name} ({args.seeds} seeds, {args.workers} workers, "
         f"grace {args.grace_period}, eta {args.reduction_factor})")
    print(table_md)


if __name__ == "__main__":
    main()
