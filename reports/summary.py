"""From a run directory to what users keep: the front, the pick, and the exported files.

`summarize` is pure (no writes) so the terminal report can be rendered on its own; `write_outputs`
adds the exports. Every export is written atomically, so re-running `trilevel-report` while the
search still appends trials never leaves a half-written `best.yaml` behind.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from trilevel.core.config import RunConfig, SparsityConfig
from trilevel.core.errors import UserError
from trilevel.store.run_store import (
    BEST_JSON, BEST_YAML, PARETO_HTML, PARETO_JSON, PARETO_PNG, PARETO_YAML, ProxyClimb, Run, ShorterRun,
    TrialRecord, load_run,
)

from trilevel.core.atomic import atomic_write_text
from .economics import Economics
from .fidelity import FidelityVerdict
from .levels import LevelEffects
from .noise import dense_climb, learned
from .papers import PaperComparison, compare_papers
from .proxy import checked_climb
from .shorter import ShorterCurve
from .selection import (
    DenseReference,
    PickKind,
    Selection,
    dense_reference,
    front_hypervolume,
    pareto_front,
    select_best,
)


@dataclass
class Summary:
    """Everything the report shows, computed once. `written` maps export name -> path."""

    run: Run
    objective: str
    max_acc_drop: float  # points
    reference: DenseReference
    front: list[TrialRecord]  # fastest first
    selection: Selection
    hypervolume: float
    wall_seconds: float | None
    written: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. why pareto.html was skipped
    shorter: ShorterCurve | None = None  # dense trained for fewer epochs (reports/shorter.py)
    beats_shorter: dict[str, bool | None] = field(default_factory=dict)  # front trial_id -> above the curve?
    # The pick lies below the train-shorter curve: train dense for this many (proxy) epochs instead.
    instead: ShorterRun | None = None
    fidelity: FidelityVerdict | None = None  # the pick and its rivals trained longer (reports/fidelity.py)
    economics: Economics | None = None  # the search's cost against the pick's saving (reports/economics.py)
    papers: list[PaperComparison] = field(default_factory=list)  # the pick against each paper's setting
    levels: LevelEffects | None = None  # each level's cost per doubling of speed (reports/levels.py)

    @property
    def resolution_pts(self) -> float | None:
        return self.run.search.resolution_pts

    @property
    def climb(self) -> ProxyClimb | None:
        """Was dense still climbing at the end of the proxy? As the search recorded it, or (a search
        from before the check) from its dense trial's curve and the stated resolution; settled by the
        longer dense runs the search measured (reports/proxy.py `checked_climb`)."""
        search = self.run.search
        climb = search.proxy_still_learning or dense_climb(self.run.baseline, self.resolution_pts)
        return checked_climb(climb, search, self.run.baseline)  # the longer runs decide (a search from before)

    @property
    def within_noise(self) -> bool:
        """The accuracy budget is finer than the seeds can resolve: a pick 'within' it is within noise."""
        res = self.resolution_pts
        return res is not None and self.max_acc_drop < res

    @property
    def best(self) -> TrialRecord | None:
        return self.selection.trial

    def best_run_config(self) -> RunConfig | None:
        """The base run with the selected trial's sparsity: what the final training should use (or,
        when the pick is below the train-shorter curve, dense at the shorter length)."""
        if self.instead is not None:
            return self.run.search.run_config.replace(sparsity=SparsityConfig(), epochs=self.instead.epochs)
        if self.best is None:
            return None
        return trial_run_config(self.run, self.best)

    @property
    def full_epochs(self) -> int:
        """Epochs the final command trains: the search's `--full-epochs` (default DeiT's 300), scaled
        like the proxy when dense is trained shorter."""
        full = self.run.search.full_epochs
        if self.instead is not None:
            return max(1, round(full * self.instead.epochs / self.run.search.epochs))
        return full

    @property
    def final_command(self) -> str | None:
        """The command that trains the selected sparsity for the full schedule with the full recipe.

        It takes only the searched ratios from best.yaml (`--sparsity`), never the proxy's batch size,
        learning rate, epochs or subsets; it names the model and data the search ran on (a dataset that
        needs a directory had one in the search), so for a built-in dataset it runs as printed.
        """
        if self.best is None and self.instead is None:
            return None
        rc = self.run.search.run_config
        args = ["trilevel-train", "--recipe", "finetune" if rc.starts_from_weights else "deit"]
        if self.instead is None:  # dense trained shorter needs no sparsity
            args += ["--sparsity", str(self.run.path.resolve() / BEST_YAML)]  # works from any directory
        args += ["--model", rc.model, "--dataset", rc.dataset]
        if rc.data:
            args += ["--data", rc.data]
        if rc.img_size:
            args += ["--img-size", str(rc.img_size)]
        if rc.patch_size:
            args += ["--patch-size", str(rc.patch_size)]
        if rc.model_kwargs:
            args += ["--model-kwargs", *(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                                         for k, v in rc.model_kwargs.items())]
        if rc.pretrained:
            args += ["--pretrained"]
        if rc.initial_checkpoint:
            args += ["--initial-checkpoint", rc.initial_checkpoint]
        return shlex.join(args + ["--epochs", str(self.full_epochs)])


def trial_run_config(run: Run, trial: TrialRecord) -> RunConfig:
    """search.json's base RunConfig with `sparsity` replaced by the trial's configuration."""
    return run.search.run_config.replace(sparsity=trial.config)


def _wall_seconds(run: Run) -> float | None:
    """Recorded wall time; for a running/interrupted search, the time since it started."""
    if run.search.wall_seconds is not None:
        return run.search.wall_seconds
    try:
        started = datetime.fromisoformat(str(run.search.started))
    except ValueError:
        return None
    end = None
    if run.search.finished:
        try:
            end = datetime.fromisoformat(str(run.search.finished))
        except ValueError:
            end = None
    if end is None:
        end = datetime.now(started.tzinfo) if started.tzinfo else datetime.now()
    try:
        return max(0.0, (end - started).total_seconds())
    except TypeError:  # one timestamp with a timezone, one without
        return max(0.0, (end.replace(tzinfo=timezone.utc) - started.replace(tzinfo=timezone.utc)).total_seconds())


def summarize(run: Run, max_acc_drop: float | None = None) -> Summary:
    """Pareto front, dense reference, selected trial and hypervolume of a loaded run."""
    if max_acc_drop is None:
        max_acc_drop = run.search.max_acc_drop
    if max_acc_drop < 0:
        raise UserError(f"--max-acc-drop must be >= 0 accuracy points, got {max_acc_drop:g}")
    objective = run.search.objective
    reference = dense_reference(run)
    if run.search.learned is False:  # dense learned nothing: every accuracy is noise, rank nothing
        selection = Selection(None, PickKind.NOT_LEARNED, None, max_acc_drop,
                              "dense did not learn in the proxy; nothing ranked or exported")
        return Summary(run=run, objective=objective, max_acc_drop=max_acc_drop, reference=reference, front=[],
                       selection=selection, hypervolume=0.0, wall_seconds=_wall_seconds(run))
    floor = run.search.chance_threshold
    # A trial that did not learn (at chance) is never ranked, a finalist, or the pick.
    eligible = [t for t in run.trials if t.is_baseline or learned(t.val_acc, floor)]
    front = pareto_front(eligible, objective)
    selection = select_best(front, reference, max_acc_drop, objective, min_acc=floor)
    base = run.baseline
    dense_seconds = base.projected_seconds if base is not None else None
    curve = ShorterCurve.build(run.search.train_shorter, reference.acc, run.search.epochs)
    beats = {t.trial_id: curve.beats(t.mean_acc, t.speed(objective)) for t in front} if curve else {}
    pick = selection.trial
    instead = None
    if curve is not None and pick is not None and not pick.is_baseline and beats.get(pick.trial_id) is False:
        instead = curve.alternative(pick.speed(objective), pick.mean_acc)
    fidelity = FidelityVerdict.build(run.search.fidelity, pick, base, {t.trial_id: t.speed(objective) for t in run.trials},
                                     max_acc_drop, selection.kind)
    if instead is not None:  # the economics are always in measured time: what a user waits for
        speedup = instead.speed(run.search.epochs)
    else:
        speedup = pick.speed("time") if pick is not None and not pick.is_baseline else None
    wall = _wall_seconds(run)
    return Summary(
        run=run, objective=objective, max_acc_drop=max_acc_drop, reference=reference, front=front,
        selection=selection, hypervolume=front_hypervolume(front, objective),
        wall_seconds=wall, shorter=curve, beats_shorter=beats, instead=instead, fidelity=fidelity,
        economics=Economics.build(wall, dense_seconds, run.search.epochs, run.search.full_epochs, speedup,
                                  _training_seconds(run, dense_seconds)),
        papers=compare_papers(run, pick, objective, max_acc_drop),
        levels=LevelEffects.of_run(run, objective),
    )


def _training_seconds(run: Run, dense_seconds: float | None) -> float:
    """Every run's training seconds summed, over all phases: the search's compute. The dense seeds'
    and finalists' extra runs record accuracies, not times: they count at their configuration's
    projected full-length seconds (what one such run takes)."""
    search = run.search
    total = sum(t.train_seconds or 0.0 for t in run.trials)
    total += max(len(search.dense_seed_accs), len(search.baseline_accs) - 1) * (dense_seconds or 0.0)
    total += sum(len(t.seed_accs) * (t.projected_seconds or 0.0) for t in run.trials)
    total += sum(r.total_seconds for r in search.train_shorter)
    if search.fidelity is not None:
        total += sum(r.seconds for r in search.fidelity.runs)
    return total


def _best_header(summary: Summary) -> str:
    best, run = summary.best, summary.run
    if summary.instead is not None:
        r = summary.instead
        return "".join(f"# {line}\n" for line in [
            f"Search {run.search.name!r} ({run.search.model} on {run.search.dataset}): train dense for fewer epochs.",
            f"The pick (trial {best.trial_id}, {best.speed(summary.objective):.2f}x at {best.mean_acc * 100:.2f}%) is below",
            f"dense trained for {r.epochs} of {run.search.epochs} epochs ({r.mean_acc * 100:.2f}% over {len(r.accs)} seeds),",
            "so this file is dense at that length; the full training keeps the same fraction of its epochs:",
            f"{summary.final_command}",
        ])
    speed = best.speed(summary.objective)
    seeds = f" (mean {best.mean_acc * 100:.2f}% over {len(best.accs)} seeds)" if best.seed_accs else ""
    lines = [
        f"Best configuration from search {run.search.name!r} ({run.search.model} on {run.search.dataset}):",
        f"trial {best.trial_id}, val acc {best.val_acc * 100:.2f}% after {best.epochs} epochs{seeds},"
        f" speedup {speed:.2f}x ({'FLOPs' if summary.objective == 'flops' else 'measured time'}).",
        f"Selected as: {summary.selection.note}.",
        "sparsity: is what the search chose (durations are fractions of training, so it transfers to any",
        "length); the other fields record the short proxy run it was found on. The full training takes",
        f"only the sparsity: {summary.final_command}",
    ]
    return "".join(f"# {line}\n" for line in lines)


BEST_FILES = (BEST_YAML, BEST_JSON)


def remove_best(run_dir: str | Path) -> None:
    """Delete best.yaml/best.json, e.g. from an earlier report of a search now judged not learned:
    a stale export would present an answer the search cannot back."""
    for name in BEST_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)


def write_outputs(run_dir: str | Path, max_acc_drop: float | None = None, *, plot: bool = True) -> Summary:
    """Load `run_dir` and write its exports next to the search files.

    Writes pareto.json (front trial records, fastest first), pareto.yaml (trial_id -> full
    RunConfig for every front trial), best.yaml + best.json (the selected RunConfig; loads with
    `RunConfig.load`), and with `plot=True` pareto.png plus pareto.html when plotly is installed.
    Without a completed trial, best.* are not written. Returns the `Summary` (see `written`).
    """
    run = load_run(run_dir)
    summary = summarize(run, max_acc_drop)
    out = run.path
    written = summary.written

    records = [{**t.to_dict(), "beats_train_shorter": summary.beats_shorter.get(t.trial_id)} for t in summary.front]
    written[PARETO_JSON] = atomic_write_text(out / PARETO_JSON, json.dumps(records, indent=2) + "\n")
    configs: dict[str, Any] = {t.trial_id: trial_run_config(run, t).to_dict() for t in summary.front}
    written[PARETO_YAML] = atomic_write_text(
        out / PARETO_YAML,
        "# Every Pareto-optimal configuration as a full run config, keyed by trial id (fastest first).\n"
        + (yaml.safe_dump(configs, sort_keys=False) if configs else "{}\n"),
    )

    best_config = summary.best_run_config()
    if summary.selection.kind == PickKind.NOT_LEARNED:
        remove_best(out)
        summary.notes.append("best.yaml not written: dense did not learn")
    elif best_config is not None:
        data = best_config.to_dict()
        written[BEST_YAML] = atomic_write_text(out / BEST_YAML, _best_header(summary) + yaml.safe_dump(data, sort_keys=False))
        written[BEST_JSON] = atomic_write_text(out / BEST_JSON, json.dumps(data, indent=2) + "\n")
    else:
        summary.notes.append(f"best.yaml not written: {summary.selection.note}")

    if plot:
        from .plot import plot_html, plot_png

        written[PARETO_PNG] = plot_png(summary, out / PARETO_PNG)
        html = plot_html(summary, out / PARETO_HTML)
        if html is not None:
            written[PARETO_HTML] = html
        else:
            summary.notes.append("pareto.html skipped: plotly is not installed (pip install plotly)")
    return summary
