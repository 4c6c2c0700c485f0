"""`--workers-per-trial N`: one trial trained data-parallel on N Ray Train workers.

The Tune trial (search/trainable.py `run_trial`) starts a Ray Train `TorchTrainer` and waits for
it, as Ray's guide for Train inside Tune does: Ray Train starts the process group (gloo on CPU,
NCCL on GPU) and every worker runs the same `Trainer` as a one-process trial, through its DDP
path (the pruner deals each rank its share of the same example plan, statistics are all-reduced,
and the trainer checks every epoch that the ranks agree on the active examples).

Each epoch every worker calls `ray.train.report` (a collective); rank 0 adds the checkpoint,
holding every rank's generators. Ray's `TuneReportCallback` passes rank 0's report on to the Tune
trial, so MO-ASHA, the recorder and the live view read the same `EpochReport` as for a
one-process trial. The checkpoints live in Ray Train's own run, named after the Tune experiment
and trial, under `train_storage` (the run directory, or the run's folder in `--storage`): a
retried or restored trial starts a Train run of the same name there, and Ray Train hands its
workers the latest checkpoint (`ray.train.get_checkpoint`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from trilevel.core.config import RunConfig
from trilevel.core.metrics import RunMetrics
from trilevel.store.run_store import EpochReport
from trilevel.core.trainer import CHECKPOINT, Trainer

from .faults import maybe_fail

TRAIN_RUNS = "train"  # the folder, beside the Tune experiments, that holds the trials' Train runs


def train_run_name(experiment: str, trial_id: str) -> str:
    """The Train run of one Tune trial: the same name on every attempt, so a retry resumes it."""
    return f"{experiment}-{trial_id}"


def train_on_workers(config: RunConfig, params: dict, workers: int, worker_resources: dict,
                     train_storage: str | None) -> None:
    """Run `config` on `workers` Ray Train workers from inside a Tune trial; returns when they
    finished, raises when one failed (the error names the worker's exception)."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    context = tune.get_context()
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"config": config.to_dict(), "params": params},
        scaling_config=ray.train.ScalingConfig(
            num_workers=workers, use_gpu=bool(worker_resources.get("GPU")), resources_per_worker=worker_resources),
        run_config=ray.train.RunConfig(
            name=train_run_name(context.get_experiment_name(), context.get_trial_id()),
            storage_path=train_storage,
            callbacks=[TuneReportCallback()],
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            # retries are Tune's (`max_failures`), which start this Train run again from its checkpoint
            failure_config=ray.train.FailureConfig(max_failures=0),
        ),
    )
    trainer.fit()


def train_worker(loop_config: dict) -> None:
    """One Ray Train worker: the trial's `Trainer` on this rank, from the Train run's latest
    checkpoint when there is one."""
    import ray.train

    from .trainable import fit_to_end, use_granted_cpus

    config = RunConfig.from_dict(loop_config["config"])
    params = loop_config["params"]
    use_granted_cpus()
    trainer = Trainer(config, callback=lambda metrics, t: _report(metrics, t, params, resumed_from),
                      callback_on_every_rank=True)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.load_checkpoint(Path(directory) / CHECKPOINT)
    resumed_from = trainer.epoch
    fit_to_end(trainer, config)


def _report(metrics: RunMetrics, trainer: Trainer, params: dict, resumed_from: int) -> None:
    """Every rank reports (Ray Train's report is a barrier); rank 0's metrics and checkpoint count."""
    import ray.train

    if trainer.rank == 0:
        maybe_fail(params, metrics.epochs)
    result = EpochReport.from_metrics(metrics, resumed_from).to_dict()
    with tempfile.TemporaryDirectory() as directory:
        wrote = trainer.checkpoint(Path(directory) / CHECKPOINT)
        ray.train.report(result, checkpoint=ray.train.Checkpoint.from_directory(directory) if wrote else None)
