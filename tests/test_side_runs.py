"""Side phases save each finished run the moment it finishes (search.json `side_runs`): a search
stopped in the middle of a phase (Ctrl-C, a session's end, a killed machine) resumes without
training a finished run again. Checked on the train-shorter phase with a stand-in trainable under
Ray (no training): one run of a length fails, the others are recorded at once; the resume trains
only the failed one."""

import os
from pathlib import Path

from test_reports import BASE_RUN, make_run

from trilevel.store.run_store import EpochReport, SideRun, read_search


def _stand_in(config):
    """Reports dense trained for `epochs`; the seed-8 run of 5 epochs crashes unless STAND_IN_LOG
    is set, and with it each point trained is logged there. (Ray's local workers inherit the
    environment: its PYTHONPATH lets them import this module.)"""
    from ray import tune

    log = os.environ.get("STAND_IN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{config['epochs']}/{config['seed']}\n")
    elif (config["epochs"], config["seed"]) == (5, 8):
        raise RuntimeError("stand-in crash")
    tune.report({"epoch": config["epochs"], "val_acc": 0.5 + config["epochs"] / 100 + config["seed"] / 1000,
                 "train_seconds": float(config["epochs"])})


def _run_phase(run_dir, said):
    import ray

    from trilevel.search import SearchOptions
    from trilevel.search.phases import Context, train_shorter
    from trilevel.spaces import load_space

    opts = SearchOptions(run=BASE_RUN.replace(seed=7), baseline_seeds=2, train_shorter=(0.3, 0.5))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        return train_shorter.run(Context(opts, load_space("tri-level"), run_dir, read_search(run_dir), said.append,
                                         trainable=_stand_in, concurrency=1))
    finally:
        ray.shutdown()


def test_a_side_phase_saves_each_finished_run_and_the_resume_trains_only_the_rest(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path / "r")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # as the search starts Ray (search/ray_compat.py)
    said = []
    first = _run_phase(run_dir, said)
    # 3 and 5 of the 10 epochs on seeds 7 and 8; the 5-epoch length lost a seed, so it is left out
    assert [(r.epochs, r.accs) for r in first] == [(3, [0.537, 0.538])]
    assert any("failed" in line and "stand-in crash" in line for line in said)
    saved = read_search(run_dir).side_runs  # on disk already, run by run
    assert sorted((r.phase, r.epochs, r.seed) for r in saved) == [
        ("train-shorter", 3, 7), ("train-shorter", 3, 8), ("train-shorter", 5, 7)]
    assert all(r.params == {"example_keep": 1.0, "token_keep": 1.0, "attention_keep": 1.0} for r in saved)
    # The resume (the phase's result was not recorded: as after a hard stop) trains the failed run alone.
    log = tmp_path / "trained.txt"
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    again = _run_phase(run_dir, said)
    assert log.read_text().split() == ["5/8"]
    assert "3 of the 4 train-shorter run(s) finished before: kept, not trained again" in said
    assert [(r.epochs, r.accs) for r in again] == [(3, [0.537, 0.538]), (5, [0.557, 0.558])]
    assert len(read_search(run_dir).side_runs) == 4


def test_a_side_run_round_trips_through_search_json(tmp_path):
    import dataclasses

    from trilevel.store.run_store import write_search

    run_dir = make_run(tmp_path / "r")
    run = SideRun("fidelity", {"example_keep": 0.7}, 3, 20, EpochReport(epoch=20, val_acc=0.81, train_seconds=9.5))
    write_search(run_dir, dataclasses.replace(read_search(run_dir), side_runs=[run]))
    assert read_search(run_dir).side_runs == [run]


def _cut_stand_in(config):
    """A finalist re-run: configuration "c" (token keep 0.5) comes back cut short at epoch 9 of 10
    without an error, as Tune returns a run a Ctrl-C / SIGTERM stopped; the others finish."""
    from ray import tune

    epochs = 9 if config["token_keep"] < 0.6 else 10
    tune.report({"epoch": epochs, "val_acc": 0.7 + config["seed"] / 100, "train_seconds": 1.0})


def test_a_stop_during_the_finalists_stops_the_search_with_the_finished_ones_saved(tmp_path, monkeypatch):
    """Seen on the CIFAR search: a SIGTERM just after the finalists' Tune run started ended it with
    nothing trained, and the phase returned as if done, so the search went on into the fidelity check."""
    import pytest
    import ray

    from trilevel.search import SearchOptions
    from trilevel.search.phases import Context, finalists
    from trilevel.spaces import load_space

    run_dir = make_run(tmp_path / "r")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    opts = SearchOptions(run=BASE_RUN.replace(seed=7), finalists=3)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(KeyboardInterrupt):
            finalists.run(Context(opts, load_space("tri-level"), run_dir, read_search(run_dir), lambda line: None,
                                  trainable=_cut_stand_in))
    finally:
        ray.shutdown()
    info = read_search(run_dir)
    assert info.finalist_accs and "c" not in info.finalist_accs  # the finished finalists saved, "c" to re-train
    assert all(accs == pytest.approx([0.78, 0.79]) for accs in info.finalist_accs.values())  # seeds 8 and 9
    assert {r.phase for r in info.side_runs} == {"finalist-seeds"} and len(info.side_runs) == 2 * len(info.finalist_accs)
