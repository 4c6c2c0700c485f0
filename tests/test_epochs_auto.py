"""`--epochs auto` (search/epochs_auto.py) on stand-in learning curves, the still-climbing warning
(reports/noise.py `proxy_climb`), and one end-to-end search that chooses its own length."""

import json
import math
import subprocess

import pytest

from trilevel.core import RunConfig, UserError
from trilevel.store.run_store import CurvePoint, EpochsAuto, ProxyClimb, SearchInfo, read_search
from trilevel.reports.noise import one_run_noise_pts, proxy_climb, settle_climb
from trilevel.reports.proxy import climbing_line, describe_epochs_auto, length_holds_line
from trilevel.search import epochs_auto
from trilevel.search import SearchOptions


def stand_in(curve, chance=0.1, num_val=500):
    """A `measure` for a known curve acc(epochs); remembers which lengths it trained."""
    trained = []

    def measure(epochs):
        trained.append(epochs)
        return CurvePoint(epochs, curve(epochs), seconds=float(epochs)), chance, num_val

    return measure, trained


def rising_trials():
    """tests/test_reports.py's trials with dense climbing to its end: 10 epochs ending at 0.80, +2
    points an epoch (a rise of 6 points over the last third)."""
    from test_reports import TRIALS

    trials = [dict(t) for t in TRIALS]
    base = next(t for t in trials if t["is_baseline"])
    n = len(base["history"])
    base["history"] = [{**h, "val_acc": base["val_acc"] - 0.02 * (n - 1 - i)} for i, h in enumerate(base["history"])]
    return trials


def saturating(epochs):
    return 0.9 - 0.5 * math.exp(-epochs / 4)  # 3: 66.4%, 6: 78.8%, 12: 87.5%, 24: 89.9%


def test_lengths_double_and_end_at_the_cap():
    assert epochs_auto.lengths(30) == [3, 6, 12, 24, 30]
    assert epochs_auto.lengths(12) == [3, 6, 12]
    assert epochs_auto.lengths(2) == [2]


def test_the_doubling_stops_where_the_curve_flattens():
    measure, trained = stand_in(saturating)
    saves = []
    record = epochs_auto.run(EpochsAuto(30, seed=0), measure, lambda r: saves.append(len(r.curve)), lambda line: None)
    # 12 -> 24 gains 2.4 points, under one run's noise on 500 images (3.1): stop there, 30 never trained
    assert one_run_noise_pts(saturating(24), 500) > 100 * (saturating(24) - saturating(12)) > 0
    assert trained == [3, 6, 12, 24]
    assert record.chosen == 12  # the shortest within the noise of the longest
    assert record.noise_pts == pytest.approx(one_run_noise_pts(saturating(24), 500))
    assert saves[:4] == [1, 2, 3, 4]  # saved after every length


def test_a_larger_validation_set_resolves_more_and_chooses_longer():
    measure, trained = stand_in(saturating, num_val=100_000)
    record = epochs_auto.run(EpochsAuto(30, seed=0), measure, lambda r: None, lambda line: None)
    assert trained == [3, 6, 12, 24, 30] and record.chosen == 24


def test_the_cap_holds_on_a_curve_that_never_flattens():
    measure, trained = stand_in(lambda e: min(0.95, 0.2 + 0.03 * e))
    lines = []
    record = epochs_auto.run(EpochsAuto(20, seed=0), measure, lambda r: None, lines.append)
    assert trained == [3, 6, 12, 20] and record.chosen == 20
    assert "a larger --max-epochs" in describe_epochs_auto(record) and lines[-1] == describe_epochs_auto(record)


def test_a_length_where_dense_has_not_learned_never_stops_the_doubling():
    accs = {3: 0.11, 6: 0.12, 12: 0.60, 24: 0.61, 30: 0.61}  # chance 10%: flat at first, then takes off
    measure, trained = stand_in(accs.__getitem__)
    record = epochs_auto.run(EpochsAuto(30, seed=0), measure, lambda r: None, lambda line: None)
    assert trained == [3, 6, 12, 24] and record.chosen == 12


def test_the_reference_is_the_most_accurate_length_not_the_longest():
    # digits, 2026-12-03 (benchmarks/results/epochs_auto_digits/auto/search.json): 24 epochs below 12
    accs = {3: 0.6111, 6: 0.9333, 12: 0.9722, 24: 0.9556}
    measure, trained = stand_in(accs.__getitem__, num_val=180)
    record = epochs_auto.run(EpochsAuto(30, seed=0), measure, lambda r: None, lambda line: None)
    assert trained == [3, 6, 12, 24] and record.chosen == 12
    assert record.noise_pts == pytest.approx(one_run_noise_pts(0.9722, 180))
    assert "of the most accurate" in describe_epochs_auto(record)


def test_resume_trains_only_the_lengths_not_finished(tmp_path):
    measure, trained = stand_in(saturating)

    class Stop(Exception):
        pass

    def interrupted(epochs):  # the driver stops while 12 epochs train
        if epochs == 12:
            raise Stop
        return measure(epochs)

    info = SearchInfo(name="r", model="m", dataset="d", space="s", objective="time", sampler="tpe", budget=1,
                      epochs=0, grace_epochs=1, reduction_factor=3, max_acc_drop=0.5, seed=0, command="",
                      started=None, finished=None, wall_seconds=None, status="running", run_config=RunConfig(),
                      baseline_accs=[], varied=[], epochs_auto=EpochsAuto(30, seed=0))
    from trilevel.store.run_store import write_search

    with pytest.raises(Stop):
        epochs_auto.run(info.epochs_auto, interrupted, lambda r: write_search(tmp_path, info), lambda line: None)
    stored = read_search(tmp_path).epochs_auto
    assert [p.epochs for p in stored.curve] == [3, 6] and stored.chosen is None
    trained.clear()
    record = epochs_auto.run(stored, measure, lambda r: write_search(tmp_path, info), lambda line: None)
    assert trained == [12, 24] and record.chosen == 12
    assert epochs_auto.run(record, measure, lambda r: None, lambda line: None).chosen == 12
    assert trained == [12, 24]  # a decided curve trains nothing


def test_the_report_of_a_search_stopped_while_choosing_its_length_says_how_far_it_got(tmp_path):
    from trilevel.store.run_store import load_run, write_search

    info = SearchInfo(name="r", model="m", dataset="d", space="s", objective="time", sampler="tpe", budget=1,
                      epochs=0, grace_epochs=1, reduction_factor=3, max_acc_drop=0.5, seed=0, command="",
                      started=None, finished=None, wall_seconds=None, status="interrupted", run_config=RunConfig(),
                      baseline_accs=[], varied=[],
                      epochs_auto=EpochsAuto(30, 0, [CurvePoint(3, 0.611, 60.0), CurvePoint(6, 0.933, 120.0)]))
    write_search(tmp_path, info)
    with pytest.raises(UserError, match=r"no trials yet in .* \(search interrupted\): choosing the proxy length, "
                                        r"dense so far: 3 epochs 61.1%, 6 epochs 93.3%; --resume continues it"):
        load_run(tmp_path)


def test_the_record_round_trips_through_search_json(tmp_path):
    record = EpochsAuto(30, 2, [CurvePoint(3, 0.5, 10.0), CurvePoint(6, 0.7, 20.0)], chosen=6, noise_pts=4.2,
                        chance_acc=0.1, num_val=180)
    assert EpochsAuto.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert record.to_dict()["seconds"] == 30.0
    climb = ProxyClimb(9, 3, 4.5, 3.0, True)
    assert ProxyClimb.from_dict(json.loads(json.dumps(climb.to_dict()))) == climb


def test_still_climbing_fires_on_a_rising_curve_and_not_on_a_flat_one():
    rising = proxy_climb([0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.84, 0.87, 0.9], resolution=3.0)
    assert rising.still_learning and rising.over_epochs == 3 and rising.rise_pts == pytest.approx(10.0)
    flat = proxy_climb([0.3, 0.6, 0.8, 0.88, 0.9, 0.905, 0.91, 0.905, 0.91], resolution=3.0)
    assert not flat.still_learning and flat.rise_pts == pytest.approx(0.5)
    assert proxy_climb([0.5], 3.0) is None and proxy_climb([0.5, 0.6], None) is None
    line = climbing_line(rising)
    assert "still climbing: +10.0 points over the last 3 of its 9 epochs" in line and "--epochs 18" in line


def test_a_longer_dense_run_settles_the_climb():
    rising = proxy_climb([0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.84, 0.87, 0.9], resolution=3.0)
    noise = one_run_noise_pts(0.91, 1000)  # 2.2 points on 1,000 images
    # rose 10 points at its schedule's end, but 18 epochs gained only 1: the length holds
    held = settle_climb(rising, [(18, 0.90, 0.91)], num_val=1000)
    assert not held.still_learning and held.longer_epochs == 18
    assert held.longer_gain_pts == pytest.approx(1.0) and held.longer_noise_pts == pytest.approx(noise)
    assert settle_climb(held, [], 1000) == held  # idempotent: a settled record read back stays settled
    assert settle_climb(rising, [(18, 0.90, 0.85)], 1000).still_learning is False  # longer overfits
    line = length_holds_line(held)
    assert line.startswith("dense rose +10.0 points over the last 3 of its 9 epochs")
    assert f"at 18 epochs (same seed) it gained +1.0, within one run's noise ({noise:.1f})" in line
    # 18 epochs gained 5 points: still climbing, with the measured gain in the warning
    gaining = settle_climb(rising, [(18, 0.90, 0.95)], 1000)
    assert gaining.still_learning and gaining.longer_gain_pts == pytest.approx(5.0)
    assert length_holds_line(gaining) is None
    assert "at 18 epochs (same seed) it gained +5.0, beyond one run's noise" in climbing_line(gaining)
    assert "try --epochs 18 or --epochs auto" in climbing_line(gaining)
    # of several longer runs, the most alarming decides; runs no longer than the proxy are not evidence
    both = settle_climb(rising, [(18, 0.90, 0.91), (24, 0.90, 0.96), (9, 0.90, 0.90)], 1000)
    assert both.still_learning and both.longer_epochs == 24
    assert settle_climb(rising, [(9, 0.90, 0.80)], 1000) == rising
    # a flat curve stays flat whatever a longer run gained: the warning is about the rise
    flat = proxy_climb([0.3, 0.6, 0.8, 0.88, 0.9, 0.905, 0.91, 0.905, 0.91], resolution=3.0)
    assert not settle_climb(flat, [(18, 0.91, 0.99)], 1000).still_learning
    assert length_holds_line(settle_climb(flat, [(18, 0.91, 0.915)], 1000)) is None  # nothing to explain


def test_the_fidelity_checks_dense_settles_the_report(tmp_path):
    """The CIFAR-10 case: dense rose over its last third, the fidelity check's dense at 2x did not."""
    from test_fidelity_check import fidelity
    from test_reports import make_run, report_text

    from trilevel.reports import load_run, summarize

    trials = rising_trials()
    runs = lambda dense_20: fidelity([("base", 0.80, dense_20), ("a", 0.798, 0.80)])  # noqa: E731
    flat = summarize(load_run(make_run(tmp_path / "flat", trials=trials, resolution_pts=3.0, num_val=10_000,
                                       fidelity=runs(0.805))))
    assert not flat.climb.still_learning and flat.climb.longer_gain_pts == pytest.approx(0.5)
    text = report_text(flat)
    assert "still climbing" not in text
    assert "but at 20 epochs (same seed) it gained +0.5, within one run's noise" in text.splitlines()[1]
    gaining = summarize(load_run(make_run(tmp_path / "gaining", trials=trials, resolution_pts=3.0, num_val=10_000,
                                          fidelity=runs(0.85))))
    assert gaining.climb.still_learning and gaining.climb.longer_gain_pts == pytest.approx(5.0)
    assert report_text(gaining).splitlines()[1].startswith(
        "warning: dense is still climbing: +6.0 points over the last 3 of its 10 epochs")
    assert "at 20 epochs (same seed) it gained +5.0, beyond one run's noise" in report_text(gaining)
    # a check on another seed is not paired with the search's dense: the rise alone decides
    other = summarize(load_run(make_run(tmp_path / "other", trials=trials, resolution_pts=3.0, num_val=10_000,
                                        fidelity={**runs(0.805), "seed": 7})))
    assert other.climb.still_learning and other.climb.longer_epochs is None


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(max_epochs=40), "switch recipes"),
    (dict(max_epochs=0), "--max-epochs must be >= 1"),
    (dict(grace_epochs=4), "cannot exceed 3"),
])
def test_bad_auto_options_are_one_line_errors(kwargs, pattern):
    with pytest.raises(UserError, match=pattern):
        SearchOptions(run=RunConfig(), epochs_auto=True, **kwargs).validate()


def test_the_command_line_takes_auto_and_rejects_words():
    from trilevel.search.cli import build_parser, options_from_args

    argv = ["--epochs", "auto", "--max-epochs", "12"]
    opts = options_from_args(build_parser().parse_args(argv), argv)
    assert opts.epochs_auto and opts.max_epochs == 12 and opts.run.epochs == 3
    argv = ["--epochs", "5"]
    opts = options_from_args(build_parser().parse_args(argv), argv)
    assert not opts.epochs_auto and opts.run.epochs == 5
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--epochs", "long"])


@pytest.mark.slow
def test_a_search_with_epochs_auto_trains_its_trials_at_the_chosen_length(tmp_path):
    from test_search import env, records, search_cmd

    cmd = search_cmd(tmp_path, "--epochs", "auto", "--max-epochs", "6", "--budget", "2", "--baseline-seeds", "2",
                     "--finalists", "0", "--concurrency", "2")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "runs" / "t"
    info = read_search(run_dir)
    auto = info.epochs_auto
    assert [p.epochs for p in auto.curve] in ([3, 6],) and auto.chosen in (3, 6)
    assert info.epochs == auto.chosen == info.run_config.epochs
    assert all(r["epochs"] == auto.chosen for r in records(run_dir).values() if r["status"] == "completed")
    assert info.proxy_still_learning is not None  # the dense trial's curve was checked
    assert "--epochs auto: dense 3:" in proc.stdout
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600, env=env())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "training dense for" not in resumed.stdout  # the curve is not trained again
    assert read_search(run_dir).epochs_auto == auto


def test_the_report_says_first_that_dense_is_still_climbing_and_how_auto_chose(tmp_path):
    from test_reports import make_run, report_text

    from trilevel.reports import load_run, summarize

    # auto stopped at its cap (6): nothing longer was measured, so the rise alone decides
    auto = EpochsAuto(6, 0, [CurvePoint(3, 0.6, 10.0), CurvePoint(6, 0.78, 20.0)],
                      chosen=6, noise_pts=5.2, chance_acc=0.1, num_val=180)
    climb = ProxyClimb(6, 2, 4.5, 3.0, True)
    run_dir = make_run(tmp_path / "run", epochs_auto=auto.to_dict(), proxy_still_learning=climb.to_dict())
    lines = report_text(summarize(load_run(run_dir))).splitlines()
    assert lines[1].startswith("warning: dense is still climbing: +4.5 points over the last 2 of its 6 epochs")
    assert lines[2].startswith("--epochs auto: dense 3: 60.0%, 6: 78.0%; the trials train 6 epochs")
    # auto chose 6 because 12 gained only 2 points (under one run's noise on 180 images): that settles it
    auto = EpochsAuto(30, 0, [CurvePoint(3, 0.6, 10.0), CurvePoint(6, 0.78, 20.0), CurvePoint(12, 0.8, 40.0)],
                      chosen=6, noise_pts=5.2, chance_acc=0.1, num_val=180)
    settled = make_run(tmp_path / "settled", epochs_auto=auto.to_dict(), proxy_still_learning=climb.to_dict(),
                       num_val=180)
    summary = summarize(load_run(settled))
    assert not summary.climb.still_learning and summary.climb.longer_epochs == 12
    lines = report_text(summary).splitlines()
    assert lines[1].startswith("dense rose +4.5 points over the last 2 of its 6 epochs")
    noise = one_run_noise_pts(0.8, 180)  # 6.9 points
    assert f"at 12 epochs (same seed) it gained +2.0, within one run's noise ({noise:.1f}): the proxy's length holds" in lines[1]
    assert "still climbing" not in report_text(summary)
    flat = make_run(tmp_path / "flat", proxy_still_learning=ProxyClimb(6, 2, 0.5, 3.0, False).to_dict())
    assert "still climbing" not in report_text(summarize(load_run(flat)))


def test_the_live_view_shows_how_the_length_was_chosen():
    import io

    from rich.console import Console

    from trilevel.reports import LiveProgress

    note = "--epochs auto: dense 3: 60.0%, 6: 78.0%; the trials train 6 epochs"
    stream = io.StringIO()
    LiveProgress(budget=4, max_acc_drop=0.5, stream=stream, note=note).start().stop()
    assert stream.getvalue().splitlines() == [note]  # plain mode: one line before the trials
    buf = io.StringIO()
    with LiveProgress(budget=4, max_acc_drop=0.5, console=Console(file=buf, force_terminal=True, width=160), note=note):
        pass
    assert note in buf.getvalue()


def test_a_search_from_before_the_check_is_checked_from_its_dense_trial(tmp_path):
    from test_reports import make_run, report_text

    from trilevel.reports import load_run, summarize

    flat = summarize(load_run(make_run(tmp_path / "flat", resolution_pts=3.0)))
    assert flat.climb is not None and not flat.climb.still_learning
    trials = rising_trials()
    rising = summarize(load_run(make_run(tmp_path / "rising", trials=trials, resolution_pts=3.0)))
    assert rising.climb.still_learning and rising.climb.rise_pts == pytest.approx(2.0 * rising.climb.over_epochs)
    assert "still climbing" in report_text(rising).splitlines()[1]


def test_the_search_records_the_settled_climb_after_its_fidelity_check(tmp_path):
    """search/phases/reference.py `check_climb`, as the runner calls it after the fidelity check:
    search.json gets the longer run's gain, and the search says the new verdict once."""
    from test_fidelity_check import fidelity
    from test_reports import BASE_RUN, make_run

    from trilevel.reports import load_run
    from trilevel.search.phases import Context, reference
    from trilevel.spaces import load_space
    from trilevel.store.run_store import FidelityCheck

    trials = rising_trials()
    run_dir = make_run(tmp_path / "r", trials=trials, resolution_pts=3.0, num_val=10_000)
    records = {t.trial_id: t for t in load_run(run_dir).trials}
    said = []
    ctx = Context(SearchOptions(run=BASE_RUN), load_space("tri-level"), run_dir, read_search(run_dir), said.append,
                  trainable=None)
    reference.check_climb(ctx, records)  # before the fidelity check: the rise alone
    assert read_search(run_dir).proxy_still_learning.still_learning and said[-1].startswith("dense is still climbing")
    ctx.record(fidelity=FidelityCheck.from_dict(fidelity([("base", 0.80, 0.806)])))
    reference.check_climb(ctx, records)
    climb = read_search(run_dir).proxy_still_learning
    assert not climb.still_learning and climb.longer_epochs == 20 and climb.longer_gain_pts == pytest.approx(0.6)
    assert said[-1].startswith("dense rose +6.0 points") and "the proxy's length holds" in said[-1]
    count = len(said)
    reference.check_climb(ctx, records)  # nothing new: recorded as it was, not said again
    assert len(said) == count and read_search(run_dir).proxy_still_learning == climb
