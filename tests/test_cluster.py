"""A lost worker machine: on a local multi-node Ray cluster, the node running a trial is removed
mid-search; Ray retries that trial from its last checkpoint on another node and the search completes.

Everything stays on loopback: every node gets node_ip_address 127.0.0.1 and Ray's rewrite of
localhost to the machine's IP is switched off here as in the search (search/ray_compat.py `keep_loopback_local`).
The test process never connects to the cluster as a driver; it finds the trial's node from the
processes (the trial's actor is a child of its node's raylet).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_search import env, records, search_cmd

from trilevel.search import ray_compat

LOOPBACK = "127.0.0.1"
EPOCHS = 4
TERMINAL = ("completed", "stopped_early", "failed")


@pytest.fixture
def cluster(monkeypatch):
    """A head node without CPUs (so the driver's node is never the one removed) and two 1-CPU
    worker nodes; shut down and its address file restored whatever happens."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    from ray.cluster_utils import Cluster

    ray_compat.keep_loopback_local()  # what the search does too: nodes stay on 127.0.0.1
    address_file = ray_compat.RAY_ADDRESS_FILE  # Cluster writes its address there
    previous = address_file.read_text() if address_file.exists() else None
    temp_dir = tempfile.mkdtemp(prefix="trl-ray-", dir="/tmp")  # short: Ray's socket paths have a limit
    # Ray writes the address file into its default temp dir even when the head node uses another;
    # on a machine where Ray never ran, that folder does not exist yet.
    address_file.parent.mkdir(parents=True, exist_ok=True)
    nodes = None
    try:
        nodes = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=0, node_ip_address=LOOPBACK, include_dashboard=False, temp_dir=temp_dir,
            # notice the lost node in ~1 s rather than Ray's default ~30 s
            _system_config={"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                            "health_check_failure_threshold": 2},
        ))
        for _ in range(2):
            nodes.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        yield nodes
    finally:
        if nodes is not None:
            nodes.shutdown()
        if previous is not None:
            address_file.write_text(previous)
        elif address_file.exists():
            address_file.unlink()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _children(pid):
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(cmdline)
    return out


def node_running_trial(nodes):
    """The worker node whose raylet runs the trial actor (Ray titles it ray::ImplicitFunc)."""
    running = [node for node in nodes.worker_nodes
               if any(c.startswith("ray::ImplicitFunc") for c in _children(node.all_processes["raylet"][0].process.pid))]
    return running[0] if len(running) == 1 else None


@pytest.mark.slow
def test_lost_worker_node_trial_resumes_from_checkpoint_elsewhere(tmp_path, cluster):
    for node in cluster.list_all_nodes():
        assert node.node_ip_address == LOOPBACK
    assert cluster.address.startswith(f"{LOOPBACK}:")
    cmd = search_cmd(tmp_path, "--address", cluster.address, "--concurrency", "1", "--budget", "2",
                     "--epochs", str(EPOCHS), "--grace-epochs", "1", "--baseline-seeds", "1",
                     "--img-size", "32")
    run_dir = tmp_path / "runs" / "t"
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            start_new_session=True)
    try:
        # the first trial (the dense baseline, protected from early stopping) has reported epoch 1
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline and proc.poll() is None:
            if (run_dir / "trials.jsonl").exists():
                running = [r for r in records(run_dir).values() if r["status"] == "running" and r["epochs"] >= 1]
                if running:
                    victim = running[0]
            time.sleep(0.1)
        assert victim is not None and victim["epochs"] < EPOCHS, "no trial caught mid-run"
        node = node_running_trial(cluster)
        assert node is not None, "cannot tell which node runs the trial"
        cluster.remove_node(node, allow_graceful=False)  # the machine is gone: no goodbye
        removed_at = time.time() - start
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print(f"node removed at {removed_at:.0f}s (trial {victim['trial_id']} at epoch {victim['epochs']}), "
          f"search done at {time.time() - start:.0f}s")
    assert proc.returncode == 0, err[-3000:]

    recs = records(run_dir)
    assert len(recs) == 2 and all(r["status"] in TERMINAL for r in recs.values())
    trial = recs[victim["trial_id"]]
    assert trial["status"] == "completed" and trial["is_baseline"], trial
    # retried once, because its node died (not counted as the trial's failure) ...
    assert trial["retries"] == 1, trial
    assert "node" in trial["retry_errors"][0], trial  # "the actor's node was terminated unexpectedly: ..."
    # ... from its checkpoint: the retry skipped the epochs reported before the loss (a restart from
    # scratch would report resumed_from 0), and the record's history runs 1..EPOCHS without a gap
    assert victim["epochs"] <= trial["resumed_from"] < EPOCHS, trial
    assert [h["epoch"] for h in trial["history"]] == list(range(1, EPOCHS + 1))
    assert trial["epochs"] == EPOCHS
    assert all(r.get("retries", 0) == 0 for tid, r in recs.items() if tid != victim["trial_id"])
    assert (run_dir / "best.yaml").exists()
