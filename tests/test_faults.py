"""Faults during a search: kill -9 of the driver at different moments, then --resume."""

import json
import os
import signal
import subprocess
import time

import pytest

from test_search import assert_study_matches_record, env, records, search_cmd

TERMINAL = ("completed", "stopped_early", "failed")


def finished(run_dir):
    path = run_dir / "trials.jsonl"
    if not path.exists():
        return {}
    return {tid: r for tid, r in records(run_dir).items() if r["status"] in TERMINAL}


def kill_after(cmd, run_dir, n_finished, timeout=300):
    """Start the search in its own process group, SIGKILL the driver once n trials finished,
    then clean up the orphaned Ray processes of that group (what a dead machine would lose)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
                            start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if len(finished(run_dir)) >= n_finished:
            break
        time.sleep(0.2)
    kill_group(proc)
    return finished(run_dir)


def kill_group(proc):
    """SIGKILL the driver, then the orphaned Ray processes of its process group."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.slow
def test_kill_9_at_different_moments_then_resume(tmp_path):
    cmd = search_cmd(tmp_path, "--budget", "5", "--epochs", "2", "--baseline-seeds", "1", "--concurrency", "1")
    run_dir = tmp_path / "runs" / "t"
    kept = {}
    for moment in (1, 3):  # after the first finished trial, then after the third
        resume = ["--resume"] if kept else []
        done = kill_after(cmd + resume, run_dir, moment)
        for tid, r in kept.items():
            assert done[tid]["status"] == r["status"] and done[tid]["history"] == r["history"]
        kept = done
        json.loads((run_dir / "search.json").read_text())  # never half-written
    final = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=400, env=env())
    assert final.returncode == 0, final.stderr[-3000:]
    after = records(run_dir)
    assert len([r for r in after.values() if r["status"] in TERMINAL]) == 5
    for tid, r in kept.items():  # every trial finished before a kill is kept and not re-run
        assert after[tid]["status"] == r["status"] and after[tid]["history"] == r["history"]
    configs = [json.dumps(r["params"], sort_keys=True) for r in after.values()]
    assert len(configs) == len(set(configs))
    assert (run_dir / "best.yaml").exists()
    assert_study_matches_record(run_dir, after)


@pytest.mark.slow
def test_one_driver_per_run_and_a_dead_drivers_lock_is_taken_over(tmp_path):
    """A second --resume while the first driver runs gets one line naming it (exit 2); after the
    first dies with kill -9, the next --resume takes its lock over, says so, and finishes."""
    cmd = search_cmd(tmp_path, "--budget", "3", "--epochs", "2", "--baseline-seeds", "1", "--concurrency", "1")
    run_dir = tmp_path / "runs" / "t"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not finished(run_dir):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGSTOP)  # frozen mid-search: it holds the run while the second tries
    try:
        assert proc.poll() is None, "the first driver ended before the check"
        other = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=120, env=env())
        lines = other.stderr.strip().splitlines()
        assert other.returncode == 2 and len(lines) == 1, other.stderr[-2000:]
        assert "in use by another trilevel-search" in lines[0] and f"(pid {proc.pid} on " in lines[0]
    finally:
        kill_group(proc)
    final = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=400, env=env())
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"Took over the run from a driver that stopped without releasing it (pid {proc.pid} on " in final.stdout
    assert len([r for r in records(run_dir).values() if r["status"] in TERMINAL]) == 3
    assert (run_dir / "driver.lock").read_text() == ""  # released at the end
