"""The fidelity check (the pick and its rivals trained longer) and the search economics, read from
hand-made run directories (no training): rank correlation, whether the pick holds, the cost/saving
arithmetic, the report's lines, and bad input. Then the runner's check itself, with a stand-in
trainable under Ray: what it trains, what it skips, and how it resumes."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from test_reports import make_run, report_text

from trilevel.core.errors import UserError
from trilevel.store.run_store import FidelityCheck, FidelityRun
from trilevel.reports import summarize
from trilevel.reports.economics import Economics
from trilevel.reports.fidelity import spearman
from trilevel.reports.summary import load_run


def fidelity(runs, **changes):
    return {"factor": 2.0, "epochs": 20, "seed": 0, "skipped": None,
            "runs": [{"trial_id": t, "search_acc": s, "acc": a, "seconds": 10.0} for t, s, a in runs], **changes}


# The hand-made search (tests/test_reports.py): dense 0.80 (mean of 3 seeds), pick "a" 0.798 at 1.5x
# (the fastest within 0.5 points), "b" 0.79 at 2x (1 point below: not within).
def test_the_pick_holds_when_the_longer_runs_keep_the_order(tmp_path):
    run_dir = make_run(tmp_path / "r", fidelity=fidelity([("base", 0.80, 0.85), ("a", 0.798, 0.847), ("b", 0.79, 0.84)]))
    summary = summarize(load_run(run_dir))
    v = summary.fidelity
    assert summary.best.trial_id == "a"
    assert v.spearman == pytest.approx(1.0) and v.holds is True and v.chosen == "a"
    assert v.pick_delta_pts == pytest.approx(-0.3)
    text = report_text(summary)
    assert "Fidelity check: 20 epochs (2x the search's 10), seed 0" in text
    assert "the pick holds" in text and "+1.00" in text


def test_the_pick_does_not_hold_when_a_faster_rival_catches_up(tmp_path):
    # At 20 epochs "b" (2x) is within 0.5 points of dense: the rule now chooses it over "a".
    run_dir = make_run(tmp_path / "r", fidelity=fidelity([("base", 0.80, 0.85), ("a", 0.798, 0.83), ("b", 0.79, 0.848)]))
    v = summarize(load_run(run_dir)).fidelity
    assert v.holds is False and v.chosen == "b" and v.margin_pts == pytest.approx(1.5)  # 0.83 vs 0.85 - 0.5 pts
    assert v.spearman == pytest.approx(0.5)  # ranks (3, 2, 1) against (3, 1, 2): 1 - 6 x 2 / (3 x 8)
    text = report_text(summarize(load_run(run_dir)))
    assert "the pick does NOT hold: the same rule on the longer runs chooses trial b (1.5 points)" in text
    assert "The fidelity check did not confirm the pick: this saving rests on it." in text  # economics line
    # The same margin inside the seeds' resolution is no evidence against the pick.
    noisy = make_run(tmp_path / "n", resolution_pts=4.8,
                     fidelity=fidelity([("base", 0.80, 0.85), ("a", 0.798, 0.83), ("b", 0.79, 0.848)]))
    noisy_text = report_text(summarize(load_run(noisy)))
    assert "prefers trial b, by 1.5 points: inside one seed's noise" in noisy_text
    assert "did not confirm" not in noisy_text  # the economics line agrees: no evidence against the pick


def test_a_pick_still_within_the_budget_holds_even_if_a_faster_rival_qualifies_too(tmp_path):
    run_dir = make_run(tmp_path / "r", fidelity=fidelity([("base", 0.80, 0.85), ("a", 0.798, 0.847), ("b", 0.79, 0.846)]))
    v = summarize(load_run(run_dir)).fidelity
    assert v.holds is True and v.chosen == "b" and v.margin_pts == 0.0
    assert "the pick holds (still within the budget); trial b, faster, now qualifies too" in report_text(
        summarize(load_run(run_dir)))


def test_a_closest_pick_holds_on_a_tie(tmp_path):
    # No finalist within the budget: the search picked the most accurate finalist ("a", mean over seeds).
    run_dir = make_run(tmp_path / "r", finalist_accs={"a": [0.79, 0.78], "b": [0.75, 0.76]},
                       fidelity=fidelity([("base", 0.80, 0.90), ("a", 0.785, 0.85), ("b", 0.755, 0.85)]))
    summary = summarize(load_run(run_dir))
    assert summary.selection.kind == "closest" and summary.best.trial_id == "a"
    v = summary.fidelity
    assert v.holds is True and v.chosen == "a" and v.margin_pts == 0.0  # b is as accurate and faster: a tie
    assert "The pick is not within 0.5 points of dense: this saving comes with its accuracy loss." in report_text(
        summary)


def test_a_skipped_check_says_why(tmp_path):
    run_dir = make_run(tmp_path / "r", fidelity=fidelity([], skipped="it would take about 900 s of training"))
    summary = summarize(load_run(run_dir))
    assert summary.fidelity.holds is None and summary.fidelity.spearman is None
    assert "Fidelity check (2x the epochs) skipped: it would take about 900 s of training." in report_text(summary)


def test_no_check_no_section(tmp_path):
    summary = summarize(load_run(make_run(tmp_path / "r")))
    assert summary.fidelity is None and "Fidelity check" not in report_text(summary)


def test_fidelity_round_trips_and_bad_input_is_one_clear_error(tmp_path):
    run_dir = make_run(tmp_path / "r", fidelity=fidelity([("base", 0.8, 0.85)]))
    check = load_run(run_dir).search.fidelity
    assert check == FidelityCheck(2.0, 20, 0, [FidelityRun("base", 0.8, 0.85, 10.0)], None)
    assert FidelityCheck.from_dict(json.loads(json.dumps(check.to_dict()))) == check
    bad = make_run(tmp_path / "bad", fidelity=fidelity([]) | {"runs": ["x"]})
    with pytest.raises(UserError, match="fidelity runs must be objects"):
        load_run(bad)


def test_spearman_is_undefined_below_three_runs_or_without_spread():
    assert spearman([0.1, 0.2], [0.3, 0.4]) is None
    assert spearman([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) is None
    assert spearman([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]) == pytest.approx(-1.0)


def test_economics_arithmetic():
    e = Economics(search_seconds=3723.0, dense_seconds=100.0, proxy_epochs=10, full_epochs=300, speedup=1.5)
    assert e.dense_runs == pytest.approx(37.23) and e.full_run_seconds == pytest.approx(3000.0)
    assert e.saving_seconds == pytest.approx(1000.0)  # 3000 s x (1 - 1/1.5)
    assert not e.pays and e.runs_to_pay == pytest.approx(3.723)
    cheap = Economics(400.0, 100.0, 10, 300, 2.0)  # saves 1500 s; 400 <= 750
    assert cheap.pays and cheap.runs_to_pay == pytest.approx(400 / 1500)
    none = Economics(400.0, 100.0, 10, 300, None)
    assert none.saving_seconds == 0.0 and not none.pays and none.runs_to_pay is None
    assert Economics.build(None, 100.0, 10, 300, 2.0) is None and Economics.build(10.0, None, 10, 300, 2.0) is None


def test_the_report_states_the_search_economics(tmp_path):
    summary = summarize(load_run(make_run(tmp_path / "r")))  # wall 3723 s, dense 100 s / 10 epochs, pick 1.5x
    e = summary.economics
    assert (e.search_seconds, e.dense_seconds, e.full_epochs, e.speedup) == (3723.0, 100.0, 300, 1.5)
    text = report_text(summary)
    assert "Search cost 1h02m03s wall = 37.2 dense proxy runs" in text
    assert "one 300-epoch run (~50m00s dense" in text and "saves ~16m40s" in text
    assert "the search's cost is recovered after 3.7 full runs" in text


def test_the_economics_count_every_run_s_training_when_runs_were_parallel(tmp_path):
    # Trials 76 s of training (tests/test_reports.py), 2 extra dense seeds at 100 s, finalist "a" 2 seeds
    # at 100 / 1.5 s, train-shorter 2 runs x 3 seeds, a fidelity check of 2 runs: 669.3 s against 100 s wall.
    run_dir = make_run(tmp_path / "r", wall_seconds=100.0, finalist_accs={"a": [0.79, 0.80]},
                       train_shorter=[{"epochs": 5, "seconds": 50.0, "accs": [0.7, 0.7, 0.7]},
                                      {"epochs": 3, "seconds": 30.0, "accs": [0.6, 0.6, 0.6]}],
                       fidelity=fidelity([("base", 0.80, 0.85), ("a", 0.798, 0.847)]))
    e = summarize(load_run(run_dir)).economics
    assert e.training_seconds == pytest.approx(76 + 200 + 2 * 100 / 1.5 + 150 + 90 + 20)
    assert e.cost_seconds == e.training_seconds and e.dense_runs == pytest.approx(e.training_seconds / 100)
    assert e.runs_to_pay == pytest.approx(e.training_seconds / e.saving_seconds)
    assert "Search cost 1m40s wall, 11m09s of training summed over its parallel runs = 6.7 dense proxy runs" \
        in report_text(summarize(load_run(run_dir)))


def test_fidelity_flags():
    from trilevel.search.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--fidelity", "off"]).fidelity == 0.0
    assert parser.parse_args([]).fidelity == 2.0 and parser.parse_args([]).fidelity_max_share == 0.5
    assert parser.parse_args(["--fidelity", "3"]).fidelity == 3.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--fidelity", "1"])


def test_the_full_training_length_is_the_users(tmp_path):
    """`--full-epochs` (e.g. a 30-epoch fine-tune) sets what the final command trains and what the
    saving is estimated on; an older search.json without it plans DeiT's 300."""
    from trilevel.search.cli import build_parser, options_from_args

    args = build_parser().parse_args(["--full-epochs", "30"])
    assert args.full_epochs == 30 and options_from_args(args, []).full_epochs == 30
    with pytest.raises(UserError, match="--full-epochs must be >= 1"):
        options_from_args(build_parser().parse_args(["--full-epochs", "0"]), []).validate()
    summary = summarize(load_run(make_run(tmp_path / "r", full_epochs=30)))
    assert summary.final_command.endswith("--epochs 30") and summary.economics.full_epochs == 30
    assert summary.economics.full_run_seconds == pytest.approx(300.0)  # 100 s per 10 proxy epochs
    assert "one 30-epoch run" in report_text(summary)
    shorter = [{"epochs": 5, "seconds": 50.0, "accs": [0.80, 0.80, 0.80]}]  # dense at half the epochs instead
    assert summarize(load_run(make_run(tmp_path / "s", full_epochs=30, train_shorter=shorter))).full_epochs == 15
    assert summarize(load_run(make_run(tmp_path / "o"))).full_epochs == 300


def test_a_knee_pick_is_reported_not_judged(tmp_path):
    # No seeds re-trained and nothing within 0.5 points of a higher dense: the pick is the knee ("b").
    run_dir = make_run(tmp_path / "r", baseline_accs=[0.90, 0.90, 0.90],
                       fidelity=fidelity([("base", 0.90, 0.95), ("a", 0.798, 0.90), ("b", 0.79, 0.85)]))
    summary = summarize(load_run(run_dir))
    assert summary.selection.kind == "knee"
    v = summary.fidelity
    assert v.holds is None and "knee" in v.why_not and v.spearman == pytest.approx(1.0)
    assert "not judged: the pick is the knee of the front" in report_text(summary)


# -- the runner's check itself, with a stand-in trainable (Ray, no training) ---------------------


def _accuracy(config) -> float:
    """The stand-in's accuracy after longer training: dense best, every keep ratio costs a little."""
    return round(0.9 - 0.1 * (3 - config["example_keep"] - config["token_keep"] - config["attention_keep"]), 4)


def _stand_in(config):
    """Reports the longer run; "c" (token keep 0.5) crashes unless STAND_IN_LOG is set, and with it
    each configuration trained is logged there. (Ray's local workers inherit the environment: its
    PYTHONPATH lets them import this module.)"""
    from ray import tune

    log = os.environ.get("STAND_IN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{config['token_keep']}\n")
    elif config["token_keep"] < 0.6:
        raise RuntimeError("stand-in crash")
    tune.report({"epoch": config["epochs"], "val_acc": _accuracy(config), "train_seconds": 1.0})


@pytest.fixture
def fidelity_setup(tmp_path):
    from trilevel.store.run_store import read_search
    from trilevel.search import SearchOptions
    from trilevel.spaces import load_space

    from test_reports import BASE_RUN

    run_dir = make_run(tmp_path / "r")
    opts = SearchOptions(run=BASE_RUN.replace(seed=7), fidelity=2.0, finalists=3)
    return opts, run_dir, read_search(run_dir), load_space("tri-level")


def test_the_runner_skips_a_check_that_costs_too_much_and_says_why(fidelity_setup):
    from trilevel.search.phases import Context, fidelity as fidelity_phase

    opts, run_dir, info, space = fidelity_setup
    opts.fidelity_max_share = 0.01
    said = []
    check = fidelity_phase.run(Context(opts, space, run_dir, info, said.append, trainable=None))  # None: nothing may train
    assert check.runs == [] and "--fidelity-max-share" in check.skipped and "limit 1%" in check.skipped
    assert said == [f"Fidelity check skipped: {check.skipped}."]
    opts.fidelity = 0  # off on a resume: whatever was recorded stays
    info = dataclasses.replace(info, fidelity=check)
    assert fidelity_phase.run(Context(opts, space, run_dir, info, said.append, trainable=None)) is check
    info = dataclasses.replace(info, fidelity=None)  # off from the start: recorded as skipped, so the report says so
    off = fidelity_phase.run(Context(opts, space, run_dir, info, said.append, trainable=None))
    assert off.runs == [] and off.skipped == "turned off (--fidelity off)"
    text = report_text(summarize(load_run(make_run(run_dir.parent / "off", fidelity=off.to_dict()))))
    assert "Fidelity check skipped: turned off (--fidelity off)." in text


def test_the_runner_trains_dense_the_pick_and_its_rivals_longer_and_resumes(fidelity_setup, monkeypatch):
    import ray

    from trilevel.reports.selection import choose_finalists
    from trilevel.search.phases import Context, fidelity as fidelity_phase

    opts, run_dir, info, space = fidelity_setup
    opts.fidelity_max_share = 10.0  # the hand-made trials' times make the check cost 6.6x theirs
    summary = summarize(load_run(run_dir))
    rivals = {t.trial_id for t in choose_finalists(summary.front, summary.reference, 0.5, "time", 3)}
    wanted = {"base", "a"} | rivals
    assert {"a", "c"} <= wanted  # "c" is among them and its run crashes below
    info = dataclasses.replace(info, fidelity=FidelityCheck(2.0, 20, 7, runs=[FidelityRun("gone", 0.5, 0.5, 1.0)]))  # an earlier check's
    said = []
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    # As the search starts Ray (search/ray_compat.py): token auth, once on, stays on in this process
    # and breaks every later local Ray start of the test session.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        check = fidelity_phase.run(Context(opts, space, run_dir, info, said.append, trainable=_stand_in))
    finally:
        ray.shutdown()
    assert (check.factor, check.epochs, check.seed, check.skipped) == (2.0, 20, 7, None)
    by_id = {r.trial_id: r for r in check.runs}
    assert set(by_id) == wanted - {"c"}  # the crash is left out, "gone" is not carried over
    assert any("failed" in line and "stand-in crash" in line for line in said)
    trials = {t.trial_id: t for t in summary.run.trials}
    for trial_id, r in by_id.items():
        assert r.acc == _accuracy(trials[trial_id].config.to_dict())
    assert by_id["base"].search_acc == pytest.approx(summary.reference.acc)  # dense: its seeds' mean
    assert by_id["a"].search_acc == pytest.approx(0.798)
    # The resume trains only what is missing, the crashed "c", and then has every run.
    info = dataclasses.replace(info, fidelity=check)
    log = run_dir / "trained.txt"
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        again = fidelity_phase.run(Context(opts, space, run_dir, info, said.append, trainable=_stand_in))
    finally:
        ray.shutdown()
    assert log.read_text().split() == ["0.5"]
    assert {r.trial_id for r in again.runs} == wanted
    # And once every run is recorded, a resume trains nothing (None: the tuner may not be built).
    info = dataclasses.replace(info, fidelity=again)
    assert {r.trial_id for r in fidelity_phase.run(Context(opts, space, run_dir, info, said.append, trainable=None)).runs} == wanted
