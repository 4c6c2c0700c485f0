"""`--workers-per-trial N`: a trial trained data-parallel on N Ray Train workers (2 CPU workers here)."""

import json
import subprocess

import pytest

from trilevel.core import RunConfig, SparsityConfig, UserError
from trilevel.search.cluster import trial_concurrency, trial_resources, worker_resources
from trilevel.search.options import SearchOptions

from test_search import env, records, search_cmd
from test_train import tiny_config


def options(**kw) -> SearchOptions:
    return SearchOptions(run=RunConfig(), **kw)


def test_a_trial_on_workers_asks_nothing_itself_and_its_workers_fit_the_cluster():
    opts = options(workers_per_trial=2, cpus_per_trial=1.0)
    # the Tune trial only waits for its Train workers: a token of memory, no CPU (else 2 workers x 1
    # CPU plus the trial would never fit a 2-CPU machine)
    resources = trial_resources(opts, {"CPU": 2})
    assert "cpu" not in resources and "gpu" not in resources and resources["memory"] > 0
    assert worker_resources(opts) == {"CPU": 1.0}
    assert worker_resources(options(workers_per_trial=2, gpus_per_trial=1)) == {"CPU": 1.0, "GPU": 1}
    assert trial_concurrency(opts, {"CPU": 8}) == 4
    assert trial_concurrency(options(workers_per_trial=2, gpus_per_trial=1), {"CPU": 16, "GPU": 4}) == 2
    assert trial_concurrency(options(), {"CPU": 8}) == 8  # one process per trial, as before
    with pytest.raises(UserError, match="--workers-per-trial 4 x --cpus-per-trial 1 exceeds the cluster's 2 CPUs"):
        trial_resources(options(workers_per_trial=4), {"CPU": 2})
    with pytest.raises(UserError, match="--workers-per-trial must be >= 1"):
        options(workers_per_trial=0).validate()
    with pytest.raises(UserError, match="one rank per GPU: --gpus-per-trial must be 0 or 1 with it, got 0.5"):
        options(workers_per_trial=2, gpus_per_trial=0.5).validate()


@pytest.mark.slow
def test_a_trial_on_two_workers_reports_per_epoch_and_a_retry_resumes_from_its_train_checkpoint(tmp_path, monkeypatch):
    """Through Tune as the search runs it: two gloo ranks agree on the examples every epoch (the
    trainer raises otherwise), rank 0's reports reach Tune, and an injected failure at epoch 2
    is retried by Tune from the Train run's epoch-1 checkpoint."""
    from ray import tune

    from trilevel.search.ray_compat import init_local, quiet_loggers
    from trilevel.search.trainable import run_trial
    from trilevel.search.workers import TRAIN_RUNS

    marker = tmp_path / "failed-once"
    monkeypatch.setenv("TRILEVEL_FAULT", json.dumps({"kind": "raise", "param": "example_keep", "below": 0.9,
                                                     "epoch": 2, "once": str(marker)}))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    import ray

    quiet_loggers()
    init_local()
    try:
        base = tiny_config(epochs=3, batch_size=32).to_dict()
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, base=base, fixed={}, workers=2, worker_resources={"CPU": 1},
                                 train_storage=str(tmp_path / TRAIN_RUNS)),
            trial_resources(options(workers_per_trial=2), ray.cluster_resources()))
        epochs = []  # every result Tune received, in order (a driver-side callback)

        class Epochs(tune.Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                epochs.append(result["epoch"])

        tuner = tune.Tuner(trainable, param_space={"example_keep": 0.7, "example_interval": 0.34},
                           run_config=tune.RunConfig(name="w", storage_path=str(tmp_path), verbose=0, callbacks=[Epochs()],
                                                     failure_config=tune.FailureConfig(max_failures=1)))
        [result] = list(tuner.fit())
    finally:
        ray.shutdown()
    assert result.error is None, result.error
    assert marker.exists()  # the fault fired once ...
    metrics = result.metrics
    assert metrics["epoch"] == 3 and metrics["world_size"] == 2
    assert metrics["resumed_from"] == 1  # ... and the retry continued from the epoch-1 checkpoint
    assert metrics["paired_speedup"] > 1  # the paired speed is measured on the workers too
    assert epochs == [1, 2, 3]  # epoch 1 once (the failing attempt's epoch 2 never reported)
    runs = list((tmp_path / TRAIN_RUNS).iterdir())
    assert len(runs) == 1 and any(p.name.startswith("checkpoint_") for p in runs[0].iterdir())


@pytest.mark.slow
def test_search_with_two_workers_per_trial(tmp_path):
    """The main command with --workers-per-trial 2: every trial and side run trains on two ranks,
    the records say so, and a finished search leaves no checkpoint behind (Train's included)."""
    proc = subprocess.run(search_cmd(tmp_path, "--budget", "2", "--epochs", "2", "--grace-epochs", "1",
                                     "--baseline-seeds", "2", "--finalists", "1", "--papers", "off",
                                     "--workers-per-trial", "2"),
                          capture_output=True, text=True, timeout=600, env=env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "t"
    recs = records(run_dir)
    assert len(recs) == 2 and all(r["status"] == "completed" for r in recs.values()), recs
    assert all(r["world_size"] == 2 and r["paired_speedup"] > 0 for r in recs.values())
    meta = json.loads((run_dir / "search.json").read_text())
    assert meta["status"] == "finished" and len(meta["baseline_accs"]) == 2
    assert (run_dir / "best.yaml").exists()
    assert not [p for p in run_dir.glob("**/checkpoint_*") if p.is_dir()]
    assert SparsityConfig.from_dict(RunConfig.load(run_dir / "best.yaml").sparsity.to_dict())
