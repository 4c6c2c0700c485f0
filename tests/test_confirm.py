"""benchmarks/confirm.py: the pick confirmed against dense, and against what a user would do instead
(`--alternatives`), run by run into a JSON file that an interrupted benchmark continues from."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trilevel.core.config import RunConfig, SparsityConfig

CONFIRM = Path(__file__).resolve().parents[1] / "benchmarks" / "confirm.py"
PAPER = "InfoBatch r = 0.5"


def confirm(*args, timeout=300):
    return subprocess.run([sys.executable, str(CONFIRM), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_confirm_refuses_a_dense_best_yaml(tmp_path):
    """When the search recommends dense trained shorter, best.yaml is dense: confirm.py has no sparse
    pick to train against dense, and says so instead of timing dense against itself."""
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(RunConfig(epochs=3).to_dict()))
    for extra in ([], ["--alternatives", PAPER]):
        proc = confirm(tmp_path, *extra, timeout=120)
        assert proc.returncode == 1 and "nothing sparse to confirm" in proc.stderr, proc.stderr[-2000:]


def _tiny_pick(run_dir: Path) -> None:
    pick = RunConfig(model="vit_t", model_kwargs={"depth": 2, "embed_dim": 32, "num_heads": 2}, img_size=16,
                     patch_size=4, epochs=3, batch_size=32, lr=2e-3, warmup=0.0, drop_path=0.0, augment=False,
                     train_subset=200, val_subset=100, device="cpu",
                     sparsity=SparsityConfig(example_keep=0.7, token_keep=0.5))
    (run_dir / "best.yaml").write_text(pick.to_yaml())


def test_alternatives_resume_run_by_run_and_refuse_another_benchmark(tmp_path):
    """Seed by seed: dense, the pick, the paper's setting, dense shorter. A second invocation with
    one more seed trains only that seed's four runs and keeps the first seed's rows as they were;
    `--stop-after 0` starts nothing; another epoch count is refused, not mixed in."""
    _tiny_pick(tmp_path)
    out = tmp_path / "alt.json"
    common = ["--alternatives", PAPER, "--json", out, "--retries", "0", "--train-subset", 120]
    first = confirm(tmp_path, "--seeds", 1, *common)
    assert first.returncode == 0, first.stderr[-3000:]
    stored = json.loads(out.read_text())
    assert stored["base"]["train_subset"] == 120 and stored["base"]["val_subset"] == 100
    assert stored["pick"]["example_keep"] == 0.7 and stored["paper"]["sparsity"]["example_criterion"] == "loss"
    assert {n: [r["seed"] for r in rows] for n, rows in stored["runs"].items()} == {
        "dense": [0], "pick": [0], "paper": [0], "shorter": [0]}
    assert 1 <= stored["shorter_epochs"] <= 3
    assert stored["summary"]["seeds"] == [0]

    second = confirm(tmp_path, "--seeds", 2, *common)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "seed 0" not in second.stdout and second.stdout.count("seed 1 ") == 4, second.stdout
    again = json.loads(out.read_text())
    for name, rows in again["runs"].items():
        assert [r["seed"] for r in rows] == [0, 1]
        assert rows[0] == stored["runs"][name][0]  # the first seed's run was not trained again
    summary = again["summary"]
    # Timed seeds: those no other process disturbed (a busy test machine may disturb some).
    assert summary["seeds"] == [0, 1] and set(summary["timed_seeds"]) <= {0, 1}
    assert summary["rows"]["dense"]["speedup"] in (None, 1.0) and summary["rows"]["pick"]["vs_dense_pts"] is not None
    # Shorter at the pick's time: its epochs never change once measured.
    assert again["shorter_epochs"] == stored["shorter_epochs"]

    stopped = confirm(tmp_path, "--seeds", 3, "--stop-after", 0, *common)
    assert stopped.returncode == 0 and "--stop-after reached" in stopped.stdout, stopped.stdout + stopped.stderr
    assert [r["seed"] for r in json.loads(out.read_text())["runs"]["dense"]] == [0, 1]

    other = confirm(tmp_path, "--seeds", 1, "--epochs", 2, *common)
    assert other.returncode == 1 and "holds a different benchmark (epochs: 3 != 2" in other.stderr, other.stderr
    assert "Traceback" not in other.stderr


def test_alternatives_two_at_a_time_take_speed_from_the_runs_paired_speedups(tmp_path):
    """`--jobs 2`: the four runs of a seed two at a time (dense trained shorter after the first
    dense/pick pair), each saved as it ends; the pick's speed is its paired speedup."""
    _tiny_pick(tmp_path)
    out = tmp_path / "alt.json"
    proc = confirm(tmp_path, "--alternatives", PAPER, "--json", out, "--seeds", 1, "--jobs", 2,
                   "--train-subset", 120, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = json.loads(out.read_text())
    assert {n: [r["seed"] for r in rows] for n, rows in stored["runs"].items()} == {
        "dense": [0], "pick": [0], "paper": [0], "shorter": [0]}
    assert 1 <= stored["shorter_epochs"] <= 3
    pick = stored["summary"]["rows"]["pick"]
    assert pick["paired_speedup"] is not None and pick["paired_speedup"] > 0
    assert stored["runs"]["pick"][0]["paired_speedup"] == pick["paired_speedup"]
    assert "paired" in proc.stdout and "Traceback" not in proc.stderr
    again = confirm(tmp_path, "--alternatives", PAPER, "--json", out, "--seeds", 1, "--jobs", 2,
                    "--train-subset", 120, timeout=300)
    assert again.returncode == 0 and "seed 0 " not in again.stdout  # nothing trained twice


def test_also_trains_one_more_setting_on_the_same_seeds(tmp_path):
    """`--also FILE`: a setting outside the search (a bare sparsity mapping) trained on each seed after
    the four alternatives, with its paired differences; the file's setting is part of what the
    results file holds, so the same --json with another setting (or none) is refused, and a file
    that is not there is one line before any training."""
    _tiny_pick(tmp_path)
    also = tmp_path / "tokens.yaml"
    also.write_text(yaml.safe_dump({"token_keep": 0.25}))
    out = tmp_path / "alt.json"
    common = ["--alternatives", PAPER, "--json", out, "--retries", "0", "--train-subset", 120, "--seeds", 1]
    proc = confirm(tmp_path, *common, "--also", also)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = json.loads(out.read_text())
    assert {n: [r["seed"] for r in rows] for n, rows in stored["runs"].items()} == {
        "dense": [0], "pick": [0], "paper": [0], "shorter": [0], "also": [0]}
    assert stored["also"] == {"file": "tokens.yaml", "sparsity": SparsityConfig(token_keep=0.25).to_dict()}
    row = stored["summary"]["rows"]["also"]
    assert row["vs_dense_pts"] is not None and row["vs_pick_pts"] is not None and row["paired_speedup"] > 0
    assert "also" in proc.stdout

    without = confirm(tmp_path, *common, timeout=120)
    assert without.returncode == 1 and "holds a different benchmark" in without.stderr, without.stderr
    missing = confirm(tmp_path, "--alternatives", PAPER, "--json", tmp_path / "new.json",
                      "--also", tmp_path / "nope.yaml", timeout=120)
    assert missing.returncode == 1 and "sparsity file not found" in missing.stderr, missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "new.json").exists()
    assert confirm(tmp_path, "--also", also, timeout=120).returncode == 2  # --alternatives only


def test_alternatives_refuse_bad_input_before_training(tmp_path):
    """One line and a non-zero exit, before any training: data overrides without --alternatives, a
    results file from before confirm.py could continue one, a subset the data loader would refuse."""
    _tiny_pick(tmp_path)
    proc = confirm(tmp_path, "--train-subset", 100, timeout=120)
    assert proc.returncode == 2 and "--train-subset is for --alternatives only" in proc.stderr, proc.stderr
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"runs": {"dense": [{"val_acc": 0.9}]}, "summary": {}}))
    proc = confirm(tmp_path, "--alternatives", PAPER, "--json", old, timeout=120)
    assert proc.returncode == 1 and "written by an earlier confirm.py" in proc.stderr, proc.stderr
    proc = confirm(tmp_path, "--alternatives", PAPER, "--val-subset", -1, timeout=120)
    assert proc.returncode == 2 and "must be >= 0" in proc.stderr and "Traceback" not in proc.stderr
    proc = confirm(tmp_path, "--alternatives", "tri-level-deit", timeout=120)
    assert proc.returncode == 1 and "unknown paper setting" in proc.stderr and "tri-level-deit-t" in proc.stderr


def test_a_paper_setting_by_the_name_the_search_records_or_the_grid_tables_use():
    """The side by side of a search trains the paper setting that search tried (its records name it
    `tri-level-deit-t`); the grid tables' extras keep their own names."""
    import importlib.util

    from trilevel.spaces.papers import PAPERS

    spec = importlib.util.spec_from_file_location("benchmarks_confirm", CONFIRM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    grid = module._tabular_grid()
    values, source = module.paper_setting("tri-level-deit-t", grid)
    assert SparsityConfig(**values) == next(p for p in PAPERS if p.name == "tri-level-deit-t").config()
    assert "Tri-Level" in source
    assert module.paper_setting(PAPER, grid) == grid.PAPER_SETTINGS[PAPER]


def test_speedups_only_from_seeds_timed_on_one_quiet_machine():
    """A seed whose runs span two boots (a benchmark continued in another session) or include a
    contended run keeps its accuracies but not its speedups."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("confirm", CONFIRM)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def row(seed, acc, seconds, machine="a", contended=False):
        return {"seed": seed, "val_acc": acc, "train_seconds": seconds, "machine": machine, "contended": contended}

    result = {"runs": {
        "dense": [row(0, 0.90, 100), row(1, 0.92, 100), row(2, 0.91, 100)],
        "pick": [row(0, 0.89, 50), row(1, 0.91, 50, machine="b"), row(2, 0.90, 50)],
        "paper": [row(0, 0.85, 80), row(1, 0.86, 80), row(2, 0.85, 80, contended=True)],
        "shorter": [row(0, 0.80, 50), row(1, 0.82, 50)],
    }}
    summary = mod.summarize(result)
    # Dense trained shorter takes the pick's time from the first comparable pair: seed 0's (50 / 100).
    assert mod.shorter_length(result, 9) == 4  # round(9 x 0.5)
    result["runs"]["dense"][0]["contended"] = True
    assert mod.shorter_length(result, 9) == 4 and mod.summarize(result)["timed_seeds"] == []
    result["runs"]["dense"][2]["train_seconds"] = 75.0  # seed 2: 50 / 75 is the first comparable pair now
    assert mod.shorter_length(result, 9) == 6
    result["runs"]["dense"][0]["contended"] = False
    assert summary["seeds"] == [0, 1]  # seed 2 lacks its shorter run
    assert summary["timed_seeds"] == [0]  # seed 1 spans machines a and b
    assert summary["rows"]["pick"]["speedup"] == 2.0
    assert summary["rows"]["pick"]["paired_speedup"] is None  # rows from before paired speed
    assert abs(summary["rows"]["pick"]["vs_dense_pts"][0] - (-1.0)) < 1e-9  # accuracies use both seeds


def test_paired_speedups_where_wall_times_cannot_be_compared():
    """On a busy machine no pair is comparable: dense trained shorter takes the pick's paired
    speedup, and every row reports its paired speedup (dense 1, shorter epochs / its epochs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("confirm", CONFIRM)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def row(seed, acc, seconds, paired=None):
        return {"seed": seed, "val_acc": acc, "train_seconds": seconds, "machine": "a", "contended": True,
                "paired_speedup": paired}

    result = {"epochs": 12, "shorter_epochs": None, "runs": {
        "dense": [row(0, 0.46, 1500), row(1, 0.45, 1400)],
        "pick": [row(0, 0.45, 1100, 1.6), row(1, 0.44, 900, 1.5)],
        "paper": [row(0, 0.44, 1300, 1.2), row(1, 0.45, 1200, 1.25)],
        "shorter": [],
    }}
    assert mod.shorter_length(result, 12) == 8  # round(12 / 1.6), not the contended seconds' 9
    result["shorter_epochs"] = 8
    result["runs"]["shorter"] = [row(0, 0.43, 1000), row(1, 0.43, 950)]
    rows = mod.summarize(result)["rows"]
    assert rows["pick"]["speedup"] is None and rows["pick"]["paired_speedup"] == pytest.approx(1.55)
    assert rows["paper"]["paired_speedup"] == pytest.approx(1.225)
    assert rows["dense"]["paired_speedup"] == 1.0 and rows["shorter"]["paired_speedup"] == 1.5
    # two at a time (--jobs 2): uncontended by the threshold, yet never compared by wall time
    for rows_of in result["runs"].values():
        for r in rows_of:
            r.update(contended=False, jobs=2)
    assert mod.summarize(result)["timed_seeds"] == [] and mod.shorter_length(result, 12) == 8


def test_jobs_workers_end_with_confirm(tmp_path):
    """`--jobs N` workers do not outlive confirm.py: killed (SIGTERM or kill -9), its training
    workers end too, instead of training on unseen beside the next benchmark."""
    import os
    import signal
    import time

    pidfile = tmp_path / "worker.pid"
    script = f"""
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
sys.path.insert(0, {str(CONFIRM.parent)!r})
import confirm as mod  # by name, so spawned workers import it too, as in confirm.py's own run
def work(path):
    open(path, "w").write(str(os.getpid())); time.sleep(120)
if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=mod._die_with_parent, initargs=(os.getpid(),))
    pool.submit(work, {str(pidfile)!r}); time.sleep(120)
"""
    (tmp_path / "parent.py").write_text(script)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pidfile.unlink(missing_ok=True)
        parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], cwd=tmp_path)
        deadline = time.time() + 120
        while not pidfile.exists() or not pidfile.read_text():
            assert time.time() < deadline and parent.poll() is None, "the worker never started"
            time.sleep(0.2)
        worker = int(pidfile.read_text())
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail(f"worker {worker} outlived confirm.py after {sig.name}")
