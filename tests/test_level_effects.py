"""Which level costs the least accuracy for its speed (benchmarks/level_effects.py): the fit recovers
known per-level effects from a hand-made search and a hand-made grid table, says which level buys
no speed, and refuses what it cannot fit in one line."""

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from test_reports import TRIALS, make_run, report_text, trial

from trilevel.reports.summary import load_run, summarize

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("benchmarks_level_effects", BENCH / "level_effects.py")
level_effects = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(level_effects)

# Known effects: examples cost 10 points per unit pruned for +1.4 log speed, tokens 2 points for
# +0.7, attention nothing for nothing. A small alternating wobble stands in for seed noise.
KEEPS = [dict(zip(("ex", "tok", "att"), v)) for v in itertools.product([0.5, 0.75, 1.0], [0.5, 0.75, 1.0], [0.1, 1.0])]


def _acc(k, i):
    return 80 - 10 * (1 - k["ex"]) - 2 * (1 - k["tok"]) + (0.1 if i % 2 else -0.1)


def _speed(k):
    return math.exp(1.4 * (1 - k["ex"]) + 0.7 * (1 - k["tok"]))


def test_a_search_s_trials_give_each_level_s_cost_per_doubling(tmp_path, capsys):
    trials = [trial(f"t{i}", acc=_acc(k, i) / 100, speedup=_speed(k), baseline=all(v == 1.0 for v in k.values()), **k)
              for i, k in enumerate(KEEPS)]
    trials.append(trial("s", status="stopped_early", acc=0.2, speedup=9.0, epochs=2, ex=0.5))  # not a final accuracy
    spec = {"params": {"example_keep": {"low": 0.5, "high": 1.0}, "token_keep": {"low": 0.3, "high": 1.0},
                       "attention_keep": {"low": 0.1, "high": 1.0}}}
    run_dir = make_run(tmp_path / "run", trials, varied=["attention_keep", "example_keep", "token_keep"],
                       space_spec=spec)
    out = tmp_path / "effects.json"
    assert level_effects.main([str(run_dir), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["runs"] == len(KEEPS) and result["speed"] == "paired speedup"
    ex, tok, att = (result["levels"][k] for k in ("example_keep", "token_keep", "attention_keep"))
    assert ex["acc_pts_per_unit"] == pytest.approx(-10, abs=0.2) and tok["acc_pts_per_unit"] == pytest.approx(-2, abs=0.2)
    assert ex["log_speed_per_unit"] == pytest.approx(1.4, abs=1e-3) and tok["log_speed_per_unit"] == pytest.approx(0.7, abs=1e-3)
    # the cheaper lever: tokens lose ~2 points per doubling, examples ~5; attention buys no speed
    assert ex["pts_per_speed_doubling"] == pytest.approx(-10 / 1.4 * math.log(2), abs=0.2)
    assert tok["pts_per_speed_doubling"] == pytest.approx(-2 / 0.7 * math.log(2), abs=0.3)
    assert att["pts_per_speed_doubling"] is None
    # examples tried down to their bound; tokens not (0.5 against 0.3): room left in the space
    assert (ex["lowest_keep_tried"], ex["space_low"]) == (0.5, 0.5) and (tok["lowest_keep_tried"], tok["space_low"]) == (0.5, 0.3)
    assert ex["speedup_alone_at_lowest"] == pytest.approx(math.exp(0.7), abs=1e-3)
    text = capsys.readouterr().out
    assert "speed = paired speedup" in text and "no speed" in text


def test_a_grid_table_uses_flops_speedup():
    configs = [{"params": {"example_keep": k["ex"], "token_keep": k["tok"], "attention_keep": k["att"]}, "seed": 0,
                "val_acc": [0.1, _acc(k, i) / 100], "expected_train_flops": 1e12 / _speed(k)} for i, k in enumerate(KEEPS)]
    table = {"grid": {"example_keep": [0.5, 0.75, 1.0], "token_keep": [0.5, 0.75, 1.0], "attention_keep": [0.1, 1.0]},
             "configs": configs}
    levels, rows, speed, bounds = level_effects.grid_rows_from(table, "table")
    result = level_effects.effects(levels, rows, speed, bounds)
    assert result["speed"] == "FLOPs speedup" and bounds["token_keep"] == 0.5
    assert result["levels"]["example_keep"]["log_speed_per_unit"] == pytest.approx(1.4, abs=1e-3)


def test_too_few_runs_and_a_missing_source_are_one_line(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", [trial("base", acc=0.8, speedup=1.0, baseline=True)],
                       varied=["example_keep", "token_keep", "attention_keep"])
    with pytest.raises(SystemExit, match="1 finished runs cannot fit 3 levels"):
        level_effects.main([str(run_dir)])
    assert level_effects.main([str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_report_says_where_the_speed_comes_from_and_which_level_is_at_its_bound(tmp_path):
    trials = [trial(f"t{i}", acc=_acc(k, i) / 100, speedup=_speed(k), baseline=all(v == 1.0 for v in k.values()), **k)
              for i, k in enumerate(KEEPS)]
    spec = {"params": {"example_keep": {"low": 0.3, "high": 1.0}, "token_keep": {"low": 0.5, "high": 1.0},
                       "attention_keep": {"low": 0.1, "high": 1.0}}}
    summary = summarize(load_run(make_run(tmp_path / "run", trials, varied=["attention_keep", "example_keep", "token_keep"],
                                          space_spec=spec)))
    assert [e.level for e in summary.levels.levels] == ["token_keep", "example_keep", "attention_keep"]  # cheapest first
    lines = [line for line in report_text(summary).splitlines() if line.startswith("  ") and " keep: " in line]
    assert lines[0].startswith("  token keep: -2.0 points per 2")
    assert "space's lower bound 0.5" in lines[0]  # tokens tried down to 0.5, the bound
    assert lines[1].startswith("  example keep: -5.0 points per 2") and "bound" not in lines[1]  # 0.5 > 0.3
    assert lines[2].startswith("  attention keep: no measurable speed")
    assert "Where the speed comes from (least squares over the 18 trials run to the end" in report_text(summary)


def test_too_few_finished_trials_show_no_fit(tmp_path):
    summary = summarize(load_run(make_run(tmp_path / "run", TRIALS)))
    assert summary.levels is None and "Where the speed comes from" not in report_text(summary)
