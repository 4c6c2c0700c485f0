"""The Ray Tune function trainable: one trial = one `Trainer` run, reported once per epoch.

Each report carries the validation accuracy, the measured training seconds, the projected
training seconds for the full trial length, the training FLOPs and the FLOPs speedup over dense,
and a checkpoint (Tune keeps >= 2) from which a retried or resumed trial continues.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from ray import tune

from trilevel.core.config import RunConfig, SparsityConfig
from trilevel.core.metrics import RunMetrics
from trilevel.store.run_store import COMPLETED, EpochReport
from trilevel.core.trainer import CHECKPOINT, Trainer

from .faults import maybe_fail


def build_trial_config(base: dict, fixed: dict, params: dict, seed: int | None = None,
                       epochs: int | None = None) -> RunConfig:
    """The RunConfig of one trial: the search's base run with this point's sparsity (and, for the
    dense seeds, another seed; for the train-shorter and fidelity runs, the schedule compressed or
    stretched to `epochs`).

    A run of another length keeps the recipe the trials train with: `auto` picks a recipe by the
    run's length, and a 2x fidelity run of a 16-epoch search would otherwise switch to DeiT's (batch
    256, Mixup, strong augmentation), confounding the comparison it exists for. The recipe's values
    are fractions of training (warm-up), so they carry over to any length."""
    data = {**base, "sparsity": SparsityConfig(**{**fixed, **params}).to_dict(), "output": None}
    if seed is not None:
        data["seed"] = seed
    if epochs is not None:
        data = {**RunConfig.from_dict(data).resolved().to_dict(), "epochs": epochs}
    return RunConfig.from_dict(data)


def run_trial(params: dict, base: dict, fixed: dict, finished: tuple = (), workers: int = 1,
              worker_resources: dict | None = None, train_storage: str | None = None) -> None:
    """Train one sampled configuration, reporting to Tune after every epoch.

    `finished`: trial ids our record already holds as finished. After a kill -9, Ray restores from
    a snapshot that may predate their end and would train them again from an older checkpoint.
    `workers` > 1: the trial trains data-parallel on that many Ray Train workers, each granted
    `worker_resources` ({"CPU": .., "GPU": ..}), their run kept under `train_storage`.
    """
    if tune.get_context().get_trial_id() in finished:
        return
    params = dict(params)
    seed = params.pop("seed", None)  # dense baseline repeats over seeds
    epochs = params.pop("epochs", None)  # dense trained shorter
    config = build_trial_config(base, fixed, params, seed, epochs)
    if workers > 1:
        from .workers import train_on_workers

        train_on_workers(config, params, workers, worker_resources or {"CPU": 1}, train_storage)
        return
    use_granted_cpus()
    trainer = Trainer(config, callback=lambda metrics, t: _report(metrics, t, params, resumed_from))
    checkpoint = tune.get_checkpoint()  # set when Ray retries this trial (e.g. its node was lost)
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.load_checkpoint(Path(directory) / CHECKPOINT)
    resumed_from = trainer.epoch  # epochs this attempt did not train again (0: from scratch)
    fit_to_end(trainer, config)


def fit_to_end(trainer: Trainer, config: RunConfig) -> None:
    """Train the remaining epochs; out of memory raises with the remedy first, and a run that did not
    complete (diverged) raises, so Tune records the trial as failed with its reason."""
    try:
        metrics = trainer.fit()
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(exc, config) from None
    if metrics.status != COMPLETED:
        raise RuntimeError(f"training {metrics.status}")


def _out_of_memory(exc: Exception, config: RunConfig) -> Exception:
    """The same error type with the remedy first: the report shows one line of it."""
    return torch.OutOfMemoryError(
        f"out of memory (batch size {config.resolved().batch_size}): reduce --batch-size or run fewer trials per GPU "
        f"(--gpus-per-trial, --concurrency). {' '.join(str(exc).split())}"
    )


def _report(metrics: RunMetrics, trainer: Trainer, params: dict, resumed_from: int = 0) -> None:
    maybe_fail(params, metrics.epochs)
    result = EpochReport.from_metrics(metrics, resumed_from).to_dict()
    with tempfile.TemporaryDirectory() as directory:
        trainer.save_checkpoint(Path(directory) / CHECKPOINT)
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))


def use_granted_cpus() -> None:
    """Match torch's threads to the CPUs Ray granted this trial (actors are reused across trials)."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # outside Ray (tests call run_trial directly)
        cpus = None
    if cpus:
        torch.set_num_threads(max(1, int(cpus)))
