"""Proxy length rank studies (issue 27): grid tables at several lengths compared by rank
correlation (benchmarks/length_ranks.py), and the grid trainer's mode for tables whose accuracies
matter and not their timings (benchmarks/tabular_grid.py --any-load)."""

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCH / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


length_ranks = _load("length_ranks")
GRID = {"example_keep": [0.5, 0.75, 1.0], "token_keep": [0.5, 1.0]}


def _table(epochs, accs_by_seed):
    """A grid table at `epochs` whose configuration i ends at accs_by_seed[seed][i]."""
    points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    rows = [{"params": {**p, "attention_keep": 1.0}, "seed": seed, "val_acc": [0.1, acc]}
            for seed, accs in accs_by_seed.items() for p, acc in zip(points, accs)]
    return {"proxy": {"epochs": epochs, "seed": 0, "recipe": "proxy"}, "grid": GRID, "configs": rows}


def test_a_ranking_that_holds_when_doubled_and_one_that_reverses():
    short = _table(9, {0: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 1: [0.2, 0.1, 0.3, 0.4, 0.6, 0.5]})
    double = _table(18, {0: [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]})  # every order reversed
    result = length_ranks.compare([short, double])
    (doubling,) = result["doubling"]
    assert (doubling["epochs"], doubling["check_epochs"], doubling["seed"]) == (9, 18, 0)
    assert doubling["spearman"] == pytest.approx(-1.0) and doubling["configurations"] == 6
    (ceiling,) = result["seed_ceiling"]
    assert ceiling["epochs"] == 9 and ceiling["seeds"] == [0, 1]
    assert ceiling["spearman"] == pytest.approx(0.8857, abs=1e-3)  # two swapped neighbours in six
    assert ceiling["ci90"] is None  # six configurations: no normal-approximation interval
    assert result["dense"]["9"] == {"0": 0.6, "1": 0.5}  # example 1.0, token 1.0 is the last point

    agree = _table(18, {0: [0.11, 0.21, 0.31, 0.41, 0.51, 0.61]})
    longest = _table(36, {0: [0.2, 0.1, 0.3, 0.4, 0.5, 0.6]})
    result = length_ranks.compare([short, agree, longest])
    assert [(r["epochs"], r["check_epochs"]) for r in result["doubling"]] == [(9, 18), (18, 36)]
    assert result["doubling"][0]["spearman"] == pytest.approx(1.0)
    assert [(r["epochs"], r["check_epochs"]) for r in result["against_longest"]] == [(9, 36), (18, 36)]
    assert "9 vs 18 ep, seed 0: +1.00" in length_ranks.render(result)


def test_the_interval_from_ten_configurations_up():
    values = [0.1, 0.3, 0.2, 0.4, 0.6, 0.5, 0.7, 0.9, 0.8, 1.0]
    c = length_ranks.correlation({(i,): i for i in range(10)}, {(i,): v for i, v in enumerate(values)})
    assert c["configurations"] == 10 and 0.9 < c["spearman"] < 1
    assert c["ci90"][0] < c["spearman"] < c["ci90"][1] < 1


def test_tables_of_different_grids_or_two_of_one_length_are_refused():
    other = _table(18, {0: [0.1] * 6})
    other["grid"] = {"example_keep": [0.5, 1.0]}
    with pytest.raises(SystemExit, match="different grids"):
        length_ranks.compare([_table(9, {0: [0.1] * 6}), other])
    with pytest.raises(SystemExit, match="two tables at 9 epochs"):
        length_ranks.compare([_table(9, {0: [0.1] * 6}), _table(9, {1: [0.1] * 6})])
    longer = _table(36, {0: [0.1] * 6})
    longer["proxy"]["recipe"] = "deit"  # what recipe auto turns into above 30 epochs
    with pytest.raises(SystemExit, match="different proxies"):
        length_ranks.compare([_table(9, {0: [0.1] * 6}), longer])


def test_any_load_trains_each_configuration_once_without_waiting_for_a_quiet_machine(tmp_path, monkeypatch):
    grid = _load("tabular_grid")
    trained = []

    def train_one(proxy, params, seed, extra=None):
        trained.append((proxy["epochs"], seed, params))
        return {"params": params, "seed": seed, "val_acc": [0.5], "train_seconds": [1.0],
                "others_cpu": [0.9], "contended": True, "wall_seconds": 1.0}

    def never(*args, **kwargs):
        raise AssertionError("--any-load must not wait for a quiet machine")

    monkeypatch.setattr(grid, "train_one", train_one)
    monkeypatch.setattr(grid, "wait_quiet", never)
    monkeypatch.setattr(grid, "warm_up", lambda proxy: None)
    out = tmp_path / "grid.json"
    monkeypatch.setattr(sys, "argv", ["tabular_grid.py", "--epochs", "18", "--any-load", "--threads", "1",
                                      "--limit", "3", "--out", str(out)])
    grid.main()
    table = json.loads(out.read_text())
    assert len(trained) == 3 and {e for e, _, _ in trained} == {18}  # contended, kept, not re-run
    assert table["machine"]["threads"] == 1 and all(row["threads"] == 1 for row in table["configs"])
    assert table["proxy"]["epochs"] == 18 and table["discarded_runs"] == 0
    assert all(row["contended"] for row in table["configs"])
    # the stored proxy is a default 18-epoch search trial's run config (its recipe resolved for 18 epochs)
    assert grid.same_training(table["proxy"], grid.search_proxy(18))


def test_what_auto_would_choose_on_stored_dense_runs():
    """The digits curve of 2026-12-03 (benchmarks/results/epochs_auto_digits/auto): the search's
    rule, fed from stored rows, stops after 24 epochs and chooses 12; with 12 missing it says so."""
    proxy_length = _load("proxy_length")
    curve = {3: 0.6111, 6: 0.9333, 12: 0.9722, 24: 0.9556}
    rows = [{"seed": 0, "status": "completed", "config": {"epochs": e}, "val_acc": a, "train_seconds": 10.0 * e}
            for e, a in curve.items()]
    rows.append({"seed": 1, "status": "completed", "config": {"epochs": 48}, "val_acc": 0.99, "train_seconds": 1.0})
    out = proxy_length.rechoose(rows, seed=0, max_epochs=30, num_val=180, chance=0.1)
    assert out["chosen"] == 12 and [p["epochs"] for p in out["curve"]] == [3, 6, 12, 24]
    assert out["seconds"] == pytest.approx(450.0) and out["noise_pts"] > 0
    missing = proxy_length.rechoose([r for r in rows if r["config"]["epochs"] != 12], 0, 30, 180, 0.1)
    assert missing["chosen"] is None and missing["needs_epochs"] == 12
    other = {**rows[2], "val_acc": 0.5}  # another setting's run at 12 epochs (e.g. another batch size)
    with pytest.raises(SystemExit, match="two dense runs of seed 0 at 12 epochs"):
        proxy_length.rechoose([*rows, other], 0, 30, 180, 0.1)


def test_a_stored_search_json_brings_its_own_seed_and_validation_size(tmp_path):
    """`proxy_length.py --curve search.json` re-judges the search's own curve: its seed and
    validation size come from the file (no flags needed); a seed the rows do not hold is one line."""
    import subprocess

    info = {"num_val": 180, "epochs_auto": {"seed": 3, "max_epochs": 30, "curve": [
        {"epochs": e, "acc": a, "seconds": 10.0 * e} for e, a in ((3, 0.6111), (6, 0.9333), (12, 0.9722), (24, 0.9556))]}}
    (tmp_path / "search.json").write_text(json.dumps(info))

    def run(*extra):
        return subprocess.run([sys.executable, str(BENCH / "proxy_length.py"), "--curve", str(tmp_path / "search.json"),
                               "--json", str(tmp_path / "out.json"), *extra], capture_output=True, text=True, timeout=120)

    proc = run()
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["seed"] == 3 and out["chosen"] == 12
    proc = run("--seed", "0")
    assert proc.returncode == 2 and "no dense rows of seed 0" in proc.stderr and "[3]" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_stored_search_gives_its_dense_trial_and_its_fidelity_dense_run_as_curve_points(tmp_path):
    """A search with a fixed --epochs 12: its dense trial is the 12-epoch point, the fidelity check's
    dense run the 24-epoch point; the 3- and 6-epoch points come from proxy_recipe.py rows, whose own
    12-epoch run is the same run (same accuracy) and is not a conflict."""
    proxy_length = _load("proxy_length")
    info = {"seed": 0, "epochs": 12, "num_val": 10000, "fidelity": {"factor": 2.0, "epochs": 24, "seed": 0, "runs": [
        {"trial_id": "dense", "search_acc": 0.4573, "acc": 0.50, "seconds": 3000.0},
        {"trial_id": "knee", "search_acc": 0.44, "acc": 0.49, "seconds": 2000.0}]}}
    (tmp_path / "search.json").write_text(json.dumps(info))
    trials = [{"trial_id": "dense", "is_baseline": True, "status": "completed", "val_acc": 0.4626, "train_seconds": 1500.0},
              {"trial_id": "knee", "is_baseline": False, "status": "completed", "val_acc": 0.4442, "train_seconds": 900.0}]
    (tmp_path / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    rows = proxy_length.curve_rows(tmp_path / "search.json")
    assert [(r["seed"], r["config"]["epochs"], r["val_acc"]) for r in rows] == [(0, 12, 0.4626), (0, 24, 0.50)]
    proxy = [{"seed": 0, "status": "completed", "config": {"epochs": e}, "val_acc": a, "train_seconds": 40.0 * e}
             for e, a in ((3, 0.377), (6, 0.4057), (12, 0.4626))]
    out = proxy_length.rechoose(proxy + rows, seed=0, max_epochs=30, num_val=10000, chance=0.1)
    assert [p["epochs"] for p in out["curve"]] == [3, 6, 12, 24]
    # +3.7 points from 12 to 24, more than the noise of 10,000 images: the doubling goes on to the cap
    assert out["chosen"] is None and out["needs_epochs"] == 30
    capped = proxy_length.rechoose(proxy + rows, seed=0, max_epochs=24, num_val=10000, chance=0.1)
    assert capped["chosen"] == 24
