"""The train-shorter baseline: dense with the schedule compressed to fewer epochs. Hand-made
curves and run directories (no training): the curve, the above/below marking, and the pick it vetoes."""

import json

import pytest
import yaml

from test_reports import make_run, report_text

from trilevel.store.run_store import ShorterRun
from trilevel.reports import summarize, write_outputs
from trilevel.reports.shorter import ShorterCurve, shorter_epochs
from trilevel.reports.summary import load_run


def test_shorter_epochs_are_distinct_whole_counts_below_the_full_length():
    assert shorter_epochs(9, (1 / 3, 1 / 2, 2 / 3)) == [3, 4, 6]  # round(4.5) = 4
    assert shorter_epochs(2, (1 / 3, 1 / 2, 2 / 3)) == [1]  # 1 of 2 epochs, once
    assert shorter_epochs(10, (0.99,)) == []  # rounds to the full length: nothing shorter


def test_curve_interpolates_in_speed_and_refuses_to_extrapolate():
    runs = [ShorterRun(4, 50.0, [0.80, 0.78]), ShorterRun(2, 25.0, [0.60, 0.60])]
    # speed = full / shorter epochs (the paired and the FLOPs speed of dense alike), whatever the seconds
    curve = ShorterCurve.build(runs, dense_acc=0.80, full_epochs=8)
    assert curve.points == [(1.0, 0.80), (2.0, pytest.approx(0.79)), (4.0, pytest.approx(0.60))]
    assert curve.acc_at(3.0) == pytest.approx(0.695)  # halfway between 2x and 4x
    assert curve.acc_at(0.8) == 0.80  # slower than dense: dense itself
    assert curve.acc_at(4.5) is None  # faster than any run measured
    assert curve.beats(0.70, 3.0) is True and curve.beats(0.69, 3.0) is False
    assert curve.beats(0.99, 5.0) is None and curve.beats(None, 2.0) is None
    assert ShorterCurve.build(runs, 0.80, 10).points[-1] == (5.0, pytest.approx(0.60))
    assert ShorterCurve.build([], 0.8, 10) is None
    assert ShorterCurve.build(runs, None, 10) is None


SHORTER_BEATS_PICK = [  # pick "a" is 0.798 at 1.5x; dense at 5 of 10 epochs is 2x at 0.80
    {"epochs": 5, "seconds": 50.0, "accs": [0.80, 0.80, 0.80]},
    {"epochs": 3, "seconds": 100.0 / 3, "accs": [0.75, 0.75, 0.75]},
]


def test_a_pick_below_the_curve_becomes_dense_trained_shorter(tmp_path):
    run_dir = make_run(tmp_path / "run", train_shorter=SHORTER_BEATS_PICK)
    summary = write_outputs(run_dir, plot=False)
    assert summary.selection.trial.trial_id == "a"  # the sparse pick, vetoed:
    assert summary.beats_shorter["a"] is False and summary.beats_shorter["g"] is True
    assert summary.instead.epochs == 5
    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    assert best["epochs"] == 5 and best["sparsity"]["token_keep"] == 1.0 and best["sparsity"]["example_keep"] == 1.0
    assert summary.final_command.endswith("--epochs 150") and "--sparsity" not in summary.final_command
    text = report_text(summary)
    assert "Train dense shorter instead" in text and "5 of 10 epochs" in text
    assert "Dense trained shorter" in text and "cost of this check" in text
    front = {r["trial_id"]: r["beats_train_shorter"] for r in json.loads((run_dir / "pareto.json").read_text())}
    assert front["a"] is False and front["c"] is False
    assert json.loads((run_dir / "search.json").read_text())["train_shorter"][0]["epochs"] == 5


def test_a_pick_above_the_curve_stands(tmp_path):
    weaker = [{"epochs": 5, "seconds": 50.0, "accs": [0.70, 0.71, 0.72]}]
    summary = summarize(load_run(make_run(tmp_path / "run", train_shorter=weaker)))
    assert summary.instead is None and summary.beats_shorter["a"] is True
    assert "--sparsity" in summary.final_command and summary.final_command.endswith("--epochs 300")
    assert "above" in report_text(summary)


def test_a_pick_below_the_interpolated_curve_stays_unless_a_measured_run_is_as_good(tmp_path):
    # Dense at 5 of 10 epochs (2x) is 0.7967: the curve at 1.5x interpolates 0.7983 > the pick's 0.798,
    # but the only run as fast is less accurate than the pick; the interpolation alone replaces nothing.
    curve = [{"epochs": 5, "seconds": 50.0, "accs": [0.80, 0.80, 0.79]}]
    summary = write_outputs(make_run(tmp_path / "run", train_shorter=curve, resolution_pts=2.4), plot=False)
    assert summary.beats_shorter["a"] is False and summary.instead is None
    assert "--sparsity" in summary.final_command
    text = report_text(summary)
    assert "-0.03 points below dense trained shorter to its speed" in text
    assert "within noise" in text and "no measured shorter run is both as fast and as accurate" in text
    assert "Train dense shorter instead" not in text


def test_a_pick_faster_than_every_shorter_run_is_said_not_compared(tmp_path):
    slow = [{"epochs": 8, "seconds": 80.0, "accs": [0.79, 0.79, 0.79]}]  # 1.25x: the pick is 1.5x
    summary = summarize(load_run(make_run(tmp_path / "run", train_shorter=slow)))
    assert summary.beats_shorter["a"] is None and summary.instead is None
    assert "faster than the shortest dense run measured (1.25×); it is not compared" in report_text(summary)


def test_no_curve_no_column(tmp_path):
    summary = summarize(load_run(make_run(tmp_path / "run")))
    assert summary.shorter is None and summary.instead is None and summary.beats_shorter == {}
    assert "vs dense shorter" not in report_text(summary)


def test_malformed_train_shorter_is_one_clear_error(tmp_path):
    from trilevel.core.errors import UserError

    with pytest.raises(UserError, match="train_shorter entry has no accuracies"):
        load_run(make_run(tmp_path / "run", train_shorter=[{"epochs": 3, "seconds": 1.0, "accs": []}]))
