"""MO-ASHA: hand-made rung results with known answers, state persistence, and a live Tune run."""

import json
import math
import os
import pickle
from types import SimpleNamespace

import pytest

from trilevel.search.moasha import MOASHA, MOASHAScheduler, MOASHAStateError

OBJ = {"acc": "max", "cost": "min"}


def feed(m, results):
    """Feed (trial_id, t, acc, cost) tuples, return the decisions."""
    return [m.on_result(tid, t, {"acc": a, "cost": c}) for tid, t, a, c in results]


@pytest.mark.parametrize(
    "max_t, grace, rf, rungs",
    [
        (9, 1, 3, [1, 3]),
        (10, 1, 3, [1, 3, 9]),
        (27, 1, 3, [1, 3, 9]),
        (100, 1, 4, [1, 4, 16, 64]),
        (81, 3, 3, [3, 9, 27]),
        (16, 1, 2, [1, 2, 4, 8]),
        (10, 1, 2.5, [1, 3, 7]),  # non-integer milestones are rounded up
        (5, 5, 3, []),
    ],
)
def test_rung_milestones(max_t, grace, rf, rungs):
    assert MOASHA(OBJ, max_t, grace, rf).rungs == rungs


@pytest.mark.parametrize(
    "kwargs",
    [
        {"objectives": {}},
        {"objectives": {"acc": "maximise"}},
        {"grace_period": 0},
        {"max_t": 0},
        {"reduction_factor": 1},
        {"tie_break": "random"},
    ],
)
def test_invalid_arguments(kwargs):
    args = {"objectives": OBJ, "max_t": 9, **kwargs}
    with pytest.raises(ValueError):
        MOASHA(**args)


def test_dominated_trial_stopped_once_rung_has_rf_entries():
    m = MOASHA(OBJ, max_t=9)
    # b and c are dominated by a; b survives because the rung holds only 2 < rf entries.
    assert feed(m, [("a", 1, 0.9, 1.0), ("b", 1, 0.5, 2.0), ("c", 1, 0.4, 3.0)]) == [
        "continue",
        "continue",
        "stop",
    ]
    assert m.stopped_trials == {"c"}
    assert m.decision_count == 3


def test_a_forgotten_trial_no_longer_counts_at_its_rungs(tmp_path):
    """A trial lost with its machine is trained again under a new id: its old rung results go, so
    the rung is decided as if it had run once."""
    m = MOASHA(OBJ, max_t=9)
    feed(m, [("a", 1, 0.9, 1.0), ("lost", 1, 0.5, 2.0)])
    m.forget(["lost", "never-seen"])
    assert m.recorded(1) == {"a": [0.9, 1.0]}
    assert feed(m, [("again", 1, 0.5, 2.0)]) == ["continue"]  # 2 entries < rf: kept, as the first time
    path = tmp_path / "state.json"
    sched = MOASHAScheduler({"acc": "max", "cost": "min"}, max_t=9, state_path=str(path))
    sched.on_trial_result(None, SimpleNamespace(trial_id="x"), {"training_iteration": 1, "acc": 0.5, "cost": 1.0})
    ids = lambda: [tid for tid, _ in json.loads(path.read_text())["moasha"]["rungs"][0]["recorded"]]  # noqa: E731
    assert ids() == ["x"]
    sched.forget(["x"])
    assert ids() == []
    assert MOASHAScheduler({"acc": "max", "cost": "min"}, max_t=9, state_path=str(path)).moasha.recorded(1) == {}


def test_non_dominated_trials_kept_while_fewer_than_rf():
    m = MOASHA(OBJ, max_t=9)
    assert feed(m, [("a", 1, 0.9, 2.0), ("b", 1, 0.8, 1.0)]) == ["continue", "continue"]
    # Third non-dominated point, n == rf: keep 1; extremes tie at infinite crowding distance
    # and the better first objective (acc) wins, so the new best-acc trial continues ...
    assert feed(m, [("c", 1, 0.95, 3.0)]) == ["continue"]
    # ... while at the next rung a new middle point of a 3-point front is cut.
    assert feed(m, [("a", 3, 0.9, 2.0), ("b", 3, 0.8, 1.0), ("d", 3, 0.85, 1.5)]) == [
        "continue",
        "continue",
        "stop",
    ]


def test_crowding_keeps_extremes_and_cuts_crowded_points():
    m = MOASHA(OBJ, max_t=9, reduction_factor=3)
    # All points lie on one Pareto front (more accuracy costs more).
    assert feed(m, [("p1", 1, 0.6, 2), ("p2", 1, 0.7, 3), ("p3", 1, 0.8, 4)]) == ["continue"] * 3
    assert feed(m, [("p0", 1, 0.5, 1)]) == ["continue"]  # n=4, keep 2: extreme (best cost)
    assert feed(m, [("p4", 1, 0.9, 5)]) == ["continue"]  # n=5, keep 2: extreme (best acc)
    assert feed(m, [("p5", 1, 0.75, 3.4)]) == ["stop"]  # non-dominated but interior


def test_crowding_distance_decides_among_interior_points():
    line = [("e1", 1, 1.0, 10.0), ("e0", 1, 0.0, 0.0), ("b", 1, 0.9, 9.0), ("c", 1, 0.92, 9.2)]
    m = MOASHA(OBJ, max_t=9, reduction_factor=2)
    assert feed(m, line) == ["continue", "stop", "stop", "stop"]
    # n=5, keep 3: both extremes, then the most isolated interior point.
    assert feed(m, [("d", 1, 0.5, 5.0)]) == ["continue"]
    m = MOASHA(OBJ, max_t=9, reduction_factor=2)
    feed(m, line)
    assert feed(m, [("d", 1, 0.91, 9.1)]) == ["stop"]


def test_epsnet_differs_from_crowding_deterministically():
    # Front on a line; crowding prefers 0.9 (wide neighbour gap), the epsilon-net prefers 0.15
    # (farthest from the already chosen extremes 1.0 and 0.0).
    first = [("e1", 1, 1.0, 10.0), ("e0", 1, 0.0, 0.0), ("x", 1, 0.1, 1.0), ("y", 1, 0.9, 9.0)]
    last = [("z", 1, 0.15, 1.5)]
    crowd = MOASHA(OBJ, max_t=9, reduction_factor=2, tie_break="crowding")
    feed(crowd, first)
    assert feed(crowd, last) == ["stop"]
    runs = []
    for _ in range(2):
        eps = MOASHA(OBJ, max_t=9, reduction_factor=2, tie_break="epsnet")
        runs.append(feed(eps, first) + feed(eps, last))
        assert runs[-1][-1] == "continue"
        runs.append(json.dumps(eps.state_dict()))
    assert runs[0:2] == runs[2:4]


def test_epsnet_keeps_best_first_objective_as_seed():
    m = MOASHA(OBJ, max_t=9, tie_break="epsnet")
    # n=3, keep 1: the seed of the net is the best first objective (acc), whatever the order.
    assert feed(m, [("a", 1, 0.8, 1.0), ("b", 1, 0.7, 0.5), ("c", 1, 0.9, 2.0)])[-1] == "continue"
    m = MOASHA(OBJ, max_t=9, tie_break="epsnet")
    assert feed(m, [("c", 1, 0.9, 2.0), ("b", 1, 0.7, 0.5), ("a", 1, 0.8, 1.0)])[-1] == "stop"


def test_modes_are_respected():
    results = [("a", 1, 0.9, 1.0), ("b", 1, 0.8, 2.0), ("c", 1, 0.7, 3.0)]
    assert feed(MOASHA({"acc": "max", "cost": "min"}, 9), results)[-1] == "stop"
    # Flipped: c now dominates a and b.
    assert feed(MOASHA({"acc": "min", "cost": "max"}, 9), results)[-1] == "continue"


def test_three_objectives_mixed_modes():
    m = MOASHA({"acc": "max", "cost": "min", "mem": "min"}, max_t=9)
    for tid, v in [("a", (0.9, 1, 5)), ("b", (0.8, 0.5, 6))]:
        assert m.on_result(tid, 1, dict(zip(["acc", "cost", "mem"], v))) == "continue"
    # Same acc/cost as a but more memory: dominated by a.
    assert m.on_result("c", 1, {"acc": 0.9, "cost": 1, "mem": 9}) == "stop"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_non_finite_values_count_as_worst(bad):
    m = MOASHA(OBJ, max_t=9)
    # c would be non-dominated (cheapest) but its accuracy is not a number.
    decisions = feed(m, [("a", 1, 0.9, 1.0), ("b", 1, 0.2, 2.0), ("c", 1, bad, 0.1)])
    assert decisions == ["continue", "continue", "stop"]
    state = m.state_dict()
    assert state["rungs"][0]["recorded"][2] == ["c", [None, 0.1]]
    json.dumps(state, allow_nan=False)  # strict JSON
    # A dominated finite trial still ranks above the non-finite one: n=4 keeps a, then d.
    assert feed(m, [("d", 1, 0.5, 1.5)]) == ["continue"]
    assert m.on_result("e", 1, {"acc": 0.1, "cost": bad}) == "stop"


def test_all_non_finite_rung_keeps_first_recorded():
    m = MOASHA(OBJ, max_t=9)
    assert feed(m, [("a", 1, math.nan, 1), ("b", 1, math.nan, 1), ("c", 1, math.nan, 1)]) == [
        "continue",
        "continue",
        "stop",
    ]


def test_non_rung_times_and_max_t_continue_without_recording():
    m = MOASHA(OBJ, max_t=9)
    feed(m, [("a", 1, 0.9, 1.0), ("b", 1, 0.8, 0.5)])
    assert feed(m, [("c", 2, 0.95, 0.1)]) == ["continue"]  # first report past rung 1 ...
    assert m.recorded(1)["c"] == [0.95, 0.1]  # ... is recorded there and judged
    n = m.decision_count
    later = [("a", 2, 0.0, 99.0), ("a", 9, 0.0, 99.0), ("a", 12, 0.0, 99.0)]
    assert feed(m, later) == ["continue"] * 3
    assert m.decision_count == n


def test_trial_jumping_rungs_is_recorded_at_highest_only():
    m = MOASHA(OBJ, max_t=27)  # rungs 1, 3, 9
    m.on_result("a", 5, {"acc": 0.5, "cost": 1.0})
    assert "a" in m.recorded(3) and "a" not in m.recorded(1)
    m.on_result("a", 6, {"acc": 0.5, "cost": 1.0})  # no rung above 3 reached yet
    assert "a" not in m.recorded(1) and m.decision_count == 1


def test_stopped_trial_stays_stopped_and_completed_keep_records():
    m = MOASHA(OBJ, max_t=9)
    feed(m, [("a", 1, 0.9, 1.0), ("b", 1, 0.8, 0.5), ("c", 1, 0.1, 5.0)])
    assert m.on_result("c", 2, {"acc": 1.0, "cost": 0.0}) == "stop"
    m.on_complete("a")
    assert m.finished_trials == {"a"} and "a" in m.recorded(1)
    assert feed(m, [("d", 1, 0.05, 6.0)]) == ["stop"]  # still judged against a's record


def test_missing_objective_raises():
    with pytest.raises(KeyError, match="cost"):
        MOASHA(OBJ, max_t=9).on_result("a", 1, {"acc": 0.5})


def _script():
    return [
        ("a", 1, 0.9, 1.0), ("b", 1, 0.8, 0.5), ("c", 1, 0.1, 5.0), ("a", 3, 0.92, 3.0),
        ("d", 1, 0.95, 2.0), ("b", 3, 0.85, 1.5), ("e", 1, 0.3, 0.2), ("d", 3, 0.2, 9.0),
        ("f", 1, math.nan, 0.1), ("e", 3, 0.99, 0.1), ("g", 1, 0.5, 0.4), ("g", 3, 0.5, 0.4),
    ]  # fmt: skip


@pytest.mark.parametrize("tie_break", ["crowding", "epsnet"])
def test_state_dict_round_trip_gives_identical_later_decisions(tie_break):
    script = _script()
    ref = MOASHA(OBJ, max_t=9, tie_break=tie_break)
    expected = feed(ref, script)
    assert "stop" in expected and "continue" in expected
    m = MOASHA(OBJ, max_t=9, tie_break=tie_break)
    feed(m, script[:5])
    m.on_complete("a")
    copy = MOASHA(OBJ, max_t=9, tie_break=tie_break)
    copy.load_state_dict(json.loads(json.dumps(m.state_dict(), allow_nan=False)))
    assert copy.state_dict() == m.state_dict()
    assert feed(copy, script[5:]) == feed(m, script[5:]) == expected[5:]
    assert copy.state_dict() == m.state_dict()


def test_load_state_dict_rejects_other_setups_and_garbage():
    state = MOASHA(OBJ, max_t=9).state_dict()
    with pytest.raises(ValueError, match="made with"):
        MOASHA({"cost": "min", "acc": "max"}, max_t=9).load_state_dict(state)
    with pytest.raises(ValueError, match="made with"):
        MOASHA(OBJ, max_t=27).load_state_dict(state)
    with pytest.raises(ValueError, match="malformed"):
        MOASHA(OBJ, max_t=9).load_state_dict({k: v for k, v in state.items() if k != "stopped"})
    state["rungs"][0]["recorded"] = [["a", [1.0]]]
    with pytest.raises(ValueError, match="bad record"):
        MOASHA(OBJ, max_t=9).load_state_dict(state)


# --- Ray Tune layer, without a Ray cluster --------------------------------------------------


def _result(acc, cost, it):
    return {"acc": acc, "cost": cost, "training_iteration": it, "time_total_s": 0.1}


def _drive(sched, rows):
    return [
        sched.on_trial_result(None, SimpleNamespace(trial_id=tid), _result(a, c, t))
        for tid, t, a, c in rows
    ]


def test_scheduler_decisions_and_tune_facing_attributes():
    sched = MOASHAScheduler(OBJ, max_t=9)
    assert sched.set_search_properties("acc", "max", config={}) is True
    assert sched.metric is None  # Tune checks `scheduler.metric in result`
    assert _drive(sched, _script()[:3]) == ["CONTINUE", "CONTINUE", "STOP"]
    assert sched.stopped_trials == {"c"} and sched.decision_count == 3
    trial = SimpleNamespace(trial_id="x")
    # Missing objective / time attribute (e.g. an errored or metric-less report): no crash.
    assert sched.on_trial_result(None, trial, {"acc": 0.1, "training_iteration": 1}) == "CONTINUE"
    assert sched.on_trial_result(None, trial, {"acc": 0.1, "cost": 1.0}) == "CONTINUE"
    sched.on_trial_complete(None, trial, {})
    sched.on_trial_error(None, SimpleNamespace(trial_id="y"))
    sched.on_trial_remove(None, SimpleNamespace(trial_id="z"))
    assert sched.decision_count == 3
    assert "1 stopped" in sched.debug_string()


def test_scheduler_records_result_seen_only_at_completion():
    sched = MOASHAScheduler(OBJ, max_t=9)
    sched.on_trial_complete(None, SimpleNamespace(trial_id="a"), _result(0.9, 1.0, 3))
    assert sched.moasha.recorded(3) == {"a": [0.9, 1.0]}
    assert sched.moasha.finished_trials == {"a"}


def test_scheduler_state_file_survives_reconstruction_and_pickle(tmp_path):
    path = tmp_path / "exp" / "moasha_state.json"
    script = _script()
    ref = MOASHAScheduler(OBJ, max_t=9)
    expected = _drive(ref, script)

    sched = MOASHAScheduler(OBJ, max_t=9, state_path=path)
    blob = pickle.dumps(sched)  # like tuner.pkl: taken before any result
    _drive(sched, script[:6])
    assert json.loads(path.read_text())["moasha"] == sched.moasha.state_dict()
    assert os.listdir(path.parent) == ["moasha_state.json"]  # no temp files left behind

    rebuilt = MOASHAScheduler(OBJ, max_t=9, state_path=str(path))
    unpickled = pickle.loads(blob)
    assert len(blob) < 2000
    for s in (rebuilt, unpickled):
        assert s.moasha.state_dict() == sched.moasha.state_dict()
        assert s.stopped_trials == sched.stopped_trials
    # The three continue identically (each writes the same file; compare decisions).
    assert _drive(rebuilt, script[6:]) == expected[6:]
    assert _drive(unpickled, script[6:]) == expected[6:]


def test_scheduler_without_state_path_pickles_its_state():
    sched = MOASHAScheduler(OBJ, max_t=9)
    _drive(sched, _script()[:4])
    assert pickle.loads(pickle.dumps(sched)).moasha.state_dict() == sched.moasha.state_dict()


@pytest.mark.parametrize(
    "content",
    [
        "",  # 0-byte file
        '{"format": "trilevel.moasha", "time_attr": "training_iteration", "moa',  # truncated
        '{"format": "something-else"}',
        '{"format": "trilevel.moasha", "time_attr": "training_iteration"}',
    ],
)
def test_corrupt_state_file_raises_clear_error(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(MOASHAStateError, match="state.json"):
        MOASHAScheduler(OBJ, max_t=9, state_path=path)


def test_state_file_from_other_setup_raises(tmp_path):
    path = tmp_path / "state.json"
    _drive(MOASHAScheduler(OBJ, max_t=9, state_path=path), _script()[:2])
    with pytest.raises(MOASHAStateError, match="made with"):
        MOASHAScheduler(OBJ, max_t=27, state_path=path)
    with pytest.raises(MOASHAStateError, match="time_attr"):
        MOASHAScheduler(OBJ, max_t=9, time_attr="time_total_s", state_path=path)
    sched = MOASHAScheduler(OBJ, max_t=9, state_path=path)
    blob = pickle.dumps(sched)
    path.write_text("{not json")
    with pytest.raises(MOASHAStateError, match="corrupt"):
        pickle.loads(blob)


# --- live Ray Tune run -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(180)
def test_tuner_stops_dominated_trials(tmp_path, monkeypatch):
    import logging

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune

    # (acc, cost) per trial; C and D are dominated by A and B at every iteration.
    configs = {"A": (0.9, 1.0), "B": (0.8, 0.5), "C": (0.5, 2.0), "D": (0.4, 3.0)}

    def trainable(config):  # local, so Ray pickles it by value (workers cannot import tests/)
        acc, cost = configs[config["name"]]
        for i in range(1, 10):
            tune.report({"val_acc": acc * i / 9, "train_seconds": cost * i})

    state_path = tmp_path / "moasha_state.json"
    sched = MOASHAScheduler(
        {"val_acc": "max", "train_seconds": "min"}, max_t=9, state_path=state_path
    )
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            # Grid order + one trial at a time: A and B fill the rungs first, known answer.
            param_space={"name": tune.grid_search(list(configs))},
            tune_config=tune.TuneConfig(
                scheduler=sched, max_concurrent_trials=1, reuse_actors=True
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    assert not results.errors
    iters = {r.config["name"]: r.metrics["training_iteration"] for r in results}
    assert iters == {"A": 9, "B": 9, "C": 1, "D": 1}
    ids = {r.config["name"]: r.metrics["trial_id"] for r in results}
    state = json.loads(state_path.read_text())["moasha"]
    assert set(state["stopped"]) == {ids["C"], ids["D"]}
    # What Tuner.restore would unpickle from tuner.pkl picks the rung state up from the file.
    revived = pickle.loads(pickle.dumps(sched))
    assert revived.stopped_trials == {ids["C"], ids["D"]}
    assert set(revived.moasha.recorded(3)) == {ids["A"], ids["B"]}


def test_epsilon_turns_noise_sized_accuracy_edges_into_ties():
    from trilevel.reports.pareto import nondominated_fronts as _fronts
    import numpy as np

    F = np.array([[-0.80, 3.0], [-0.81, 5.0], [-0.79, 1.0]])  # (negated acc, cost)
    assert [f.tolist() for f in _fronts(F)] == [[0, 1, 2]]
    # within 2 points every accuracy ties, so the cheaper trial dominates
    assert [f.tolist() for f in _fronts(F, np.array([0.02, 0.0]))] == [[2], [0], [1]]
    results = [("a", 1, 0.81, 5.0), ("b", 1, 0.80, 3.0), ("c", 1, 0.79, 1.0), ("d", 1, 0.812, 6.0)]
    # d is the most accurate by 0.2 points: a front extreme without epsilon, dominated with it
    assert feed(MOASHA(OBJ, max_t=9), results)[-1] == "continue"
    assert feed(MOASHA(OBJ, max_t=9, epsilon={"acc": 0.02}), results)[-1] == "stop"
    with pytest.raises(ValueError, match="epsilon"):
        MOASHA(OBJ, max_t=9, epsilon={"loss": 0.1})
    # an epsilon is part of the setup a state file must match; none keeps older files valid
    state = MOASHA(OBJ, max_t=9, epsilon={"acc": 0.02}).state_dict()
    with pytest.raises(ValueError):
        MOASHA(OBJ, max_t=9).load_state_dict(state)
    MOASHA(OBJ, max_t=9, epsilon={"acc": 0.0}).load_state_dict(MOASHA(OBJ, max_t=9).state_dict())
