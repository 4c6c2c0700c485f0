"""The search's side runs: fixed configurations trained as small Tune runs (dense on its extra
seeds, `--epochs auto`'s lengths, dense trained shorter, the finalists on the dense seeds, the
fidelity check), each result parsed once, through the typed epoch report.

The phases read `PointResult`s, never Ray's raw result dicts: which point it was (its searched
values, seed and own length), its last `EpochReport`, and the last line of its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trilevel.store.run_store import EpochReport, config_key


@dataclass(frozen=True)
class PointResult:
    """One side run: `params` (the searched values), `seed`, `epochs` (its own length, or None for
    the search's), its last report (None when it reported nothing) and its error's last line."""

    params: dict[str, Any]
    seed: int
    epochs: int | None
    report: EpochReport | None
    error: str | None

    @property
    def key(self) -> str:
        """The configuration's identity (`config_key`), to find the trial it re-trains."""
        return config_key(self.params)

    def finished(self, epochs: int) -> bool:
        """Trained all `epochs` without error: a result. A run cut short (Ctrl-C) is not one."""
        return (self.error is None and self.report is not None and self.report.epoch == epochs
                and self.report.val_acc is not None)


def side_tuner(trainable, points: list[dict], name: str, storage_path: str | Path, concurrency: int | None = None,
               callbacks: list | None = None):
    """A Tune run of fixed configurations (`points`) in `storage_path/name` (the run directory, or
    the run's folder in `--storage`). These phases read nothing
    back from their checkpoints (a resume trains an unfinished run again), so each run keeps only
    its last one."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return tune.Tuner(
        trainable,
        param_space=dict(points[0]),  # Ray sets each point's values into these keys
        tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(points_to_evaluate=points),
                                    num_samples=len(points), max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(storage_path), verbose=0, callbacks=callbacks,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )


def point_result(config: dict, metrics: dict | None, error: Any = None) -> PointResult:
    """A side run's `PointResult` from the point Tune trained (`config`: searched values, `seed`,
    optionally `epochs`) and its last result dict."""
    params = dict(config)
    seed, epochs = params.pop("seed"), params.pop("epochs", None)
    metrics = metrics or {}
    report = EpochReport.from_result(metrics) if metrics.get("epoch") is not None else None
    error = str(error).strip().splitlines()[-1] if error is not None else None
    return PointResult(params, int(seed), epochs, report, error)


def _on_complete(fn: Callable[[PointResult], None]):
    """A Tune callback (public `tune.Callback` hook) that hands each run that ends without error to
    `fn` in the driver, as it ends: the phase saves it then, not when the whole Tune run is over."""
    from ray import tune

    class OnComplete(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            fn(point_result(trial.config, trial.last_result))

    return OnComplete()


def run_points(trainable, points: list[dict], name: str, storage_path: str | Path,
               concurrency: int | None = None,
               on_complete: Callable[[PointResult], None] | None = None) -> list[PointResult]:
    """Train `points` (each: searched values plus `seed`, optionally `epochs`) and return what each
    run ended with; `on_complete` sees each run that ends without error the moment it ends. Ctrl-C /
    SIGTERM stop the Tune run; the points cut short come back unfinished, and those that never
    started do not come back."""
    callbacks = [_on_complete(on_complete)] if on_complete is not None else None
    results = []
    for result in side_tuner(trainable, points, name, storage_path, concurrency, callbacks).fit():
        if result.config is None:  # stopped (Ctrl-C) before it started: nothing ran
            continue
        results.append(point_result(result.config, result.metrics, result.error))
    return results
