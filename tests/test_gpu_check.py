"""benchmarks/gpu_check.sh: the prepared GPU check runs its whole path on the CPU (--dry-run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


@pytest.mark.slow
def test_dry_run_writes_every_step(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run", str(tmp_path)], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [s["step"] for s in result["steps"]] == ["env", "core_deit_t", "core_deit_s", "loader", "paired", "search"]
    assert all(s["rc"] == 0 for s in result["steps"])
    assert result["env"]["dry_run"] == 1
    for name in ("core_deit_t", "core_deit_s"):
        rows = {r["config"]: r for r in result[name]["rows"]}
        assert rows["dense"]["measured_speedup"] == 1.0 and rows["input 0.5"]["flops_speedup"] > 1.5
    assert {row["config"] for row in result["paired"]["summary"]} == {"dense", "tokens 0.7"}
    assert result["search"]["status"] == "finished" and len(result["search"]["trials"]) == 2
    assert all(t["paired_speedup"] for t in result["search"]["trials"] if t["status"] == "completed")
