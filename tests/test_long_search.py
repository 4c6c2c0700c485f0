"""benchmarks/long_search.py: a search that outlives its sitting, continued from its stored records."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_search import BASE, records

LONG = Path(__file__).resolve().parents[1] / "benchmarks" / "long_search.py"


@pytest.mark.slow
def test_stored_records_alone_continue_the_search_in_a_new_run_directory(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    store = tmp_path / "store"
    flags = ["--config", str(base), "--budget", "4", "--epochs", "3", "--baseline-seeds", "1", "--concurrency", "1",
             "--no-live", "--train-shorter", "none", "--fidelity", "off", "--finalists", "0"]

    def run(run_dir, snapshot=None, **kw):
        cmd = [sys.executable, str(LONG), "--store", str(store), "--run-dir", str(run_dir), "--every", "1",
               *(["--snapshot", str(snapshot)] if snapshot else []), "--", *flags]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)

    first = run(tmp_path / "machine-a" / "s", snapshot=tmp_path / "snap")
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if (store / "trials.jsonl").exists() and sum(r["status"] != "running" for r in records(store).values()) >= 2:
            break
        time.sleep(0.5)
    first.send_signal(signal.SIGTERM)  # the sitting ends: stop gracefully, store the records
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err[-2000:]
    assert (tmp_path / "snap" / "trilevel" / "search" / "runner.py").exists()
    stored = records(store)
    assert json.loads((store / "search.json").read_text())["status"] == "interrupted"
    kept = {tid: r for tid, r in stored.items() if r["status"] != "running"}
    assert len(kept) >= 2 and (store / "report.txt").exists()

    second = run(tmp_path / "machine-b" / "s")  # nothing of machine-a but the store
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    assert "continuing from the records in" in out
    final = records(store)
    assert json.loads((store / "search.json").read_text())["status"] == "finished"
    assert sum(r["status"] in ("completed", "stopped_early", "failed") for r in final.values()) == 4
    for tid, r in kept.items():  # finished before the break: kept as they were, not re-run
        assert final[tid]["history"] == r["history"]
    assert (store / "best.yaml").exists() and "Search s" in (store / "report.txt").read_text()
