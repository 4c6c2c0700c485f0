"""The replay harness on a hand-made table: known front and hypervolume, determinism, and that
early-stopped trials never reach the front (the bug Ray's OptunaSearch has, see search/searcher)."""

import importlib.util
import sys
import warnings
from pathlib import Path

import optuna
import pytest

_spec = importlib.util.spec_from_file_location(
    "benchmarks_replay", Path(__file__).resolve().parents[1] / "benchmarks" / "replay.py"
)
replay_mod = sys.modules["benchmarks_replay"] = importlib.util.module_from_spec(_spec)  # dataclasses need it
_spec.loader.exec_module(replay_mod)
Table, Strategy, STRATEGIES, replay = (
    replay_mod.Table, replay_mod.Strategy, replay_mod.STRATEGIES, replay_mod.replay,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _row(example, token, acc, epoch_seconds):
    return {"params": {"example_keep": example, "token_keep": token},
            "val_acc": acc, "train_seconds": [epoch_seconds] * 3}


# Dense takes 3 x 4 = 12 s, so speedup = 12 / (3 x epoch seconds).
ROWS = [
    _row(1.0, 1.0, [0.50, 0.70, 0.80], 4.0),   # A dense: (0.80, 1)
    _row(1.0, 0.75, [0.45, 0.65, 0.78], 3.0),  # B: (0.78, 4/3)
    _row(1.0, 0.5, [0.40, 0.60, 0.70], 2.0),   # C: (0.70, 2)
    _row(0.5, 1.0, [0.30, 0.50, 0.60], 2.5),   # D: (0.60, 1.6), dominated by C
    _row(0.5, 0.75, [0.30, 0.40, 0.50], 1.5),  # E: (0.50, 8/3)
    _row(0.5, 0.5, [0.05, 0.30, 0.90], 3.5),   # F: (0.90, 8/7), a late bloomer; dominates A
]
TRAP = (0.5, 0.5)
# Grid front E, C, B, F; areas added fastest first, each speedup x the accuracy it adds.
GRID_HV = 8 / 3 * 0.5 + 2 * (0.7 - 0.5) + 4 / 3 * (0.78 - 0.7) + 8 / 7 * (0.9 - 0.78)
# Without F the front is E, C, B, A.
HV_WITHOUT_TRAP = 8 / 3 * 0.5 + 2 * (0.7 - 0.5) + 4 / 3 * (0.78 - 0.7) + 1 * (0.8 - 0.78)


def sweep_hv(points):
    """Independent 2-D hypervolume (both maximised, reference (0, 0)): fastest point first."""
    area = best = 0.0
    for acc, speed in sorted(points, key=lambda p: -p[1]):
        if acc > best:
            area += speed * (acc - best)
            best = acc
    return area


@pytest.fixture(scope="module")
def table():
    return Table(ROWS)


def test_table_front_and_hypervolume(table):
    assert table.total_epochs == 18
    assert table.point((0.5, 0.5)) == pytest.approx((0.9, 8 / 7))
    assert table.hypervolume() == pytest.approx(GRID_HV)
    assert sweep_hv([table.point(k) for k in table.acc]) == pytest.approx(GRID_HV)
    with pytest.raises(ValueError, match="not a full grid"):
        Table(ROWS[1:])


def test_search_without_early_stopping_finds_the_grid_front(table):
    run = replay(table, Strategy("random", None), seed=0, budget_epochs=120)
    assert len(run.hv) == 121 and run.hv[0] == 0.0
    assert run.trials[0].params == {"example_keep": 1.0, "token_keep": 1.0}  # dense first
    # As in the live search no configuration is trained twice: all 6 run once (18 epochs), the
    # sampler's repeats are told the known outcome, and the search ends; the curve stays flat.
    assert sorted(tuple(t.params.values()) for t in run.trials) == sorted(table.acc)
    assert all(t.state == "complete" for t in run.trials) and run.repeats >= 50
    assert run.hv[18:] == [run.hv[18]] * 103
    assert all(a <= b for a, b in zip(run.hv, run.hv[1:]))
    assert run.hv[-1] == pytest.approx(GRID_HV)
    # Two workers: dense (4 s/epoch) and one sampled trial run side by side; nothing counts
    # before the first trial finishes its 3rd epoch, i.e. within the first 6 epochs consumed.
    first = next(k for k, v in enumerate(run.hv) if v > 0)
    assert 3 <= first <= 6


def test_early_stopped_trials_never_enter_the_front(table):
    trap_pruned_only = leaky_seen = 0
    for seed in range(15):
        run = replay(table, Strategy("random", "moasha"), seed=seed, budget_epochs=45)
        key = lambda t: (t.params["example_keep"], t.params["token_keep"])
        complete = [table.point(key(t)) for t in run.trials if t.state == "complete"]
        pruned = [t for t in run.trials if t.state == "pruned"]
        assert all(t.epochs < 3 for t in pruned) and all(t.epochs == 3 for t in run.trials if t.state == "complete")
        assert run.trials[0].state == "complete"  # dense is protected from early stopping
        assert len({key(t) for t in run.trials}) == len(run.trials)  # never trained twice
        assert run.hv[-1] == pytest.approx(sweep_hv(complete))
        # Had the pruned trials been told with their truncated values, the front would grow:
        truncated = [(table.acc[key(t)][t.epochs - 1], table.point(key(t))[1]) for t in pruned]
        leaky_seen += sweep_hv(complete + truncated) > run.hv[-1] + 1e-9
        states = {t.state for t in run.trials if key(t) == TRAP}
        if states == {"pruned"}:
            trap_pruned_only += 1
            assert run.hv[-1] <= HV_WITHOUT_TRAP + 1e-12
    assert trap_pruned_only > 0 and leaky_seen > 0  # both situations were exercised


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_replay_is_deterministic_for_a_seed(table, name):
    strategy = STRATEGIES[name]
    a, b = (replay(table, strategy, seed=3, budget_epochs=60) for _ in range(2))
    assert a.hv == b.hv and a.trials == b.trials
    c = replay(table, strategy, seed=4, budget_epochs=60)
    assert [t.params for t in c.trials] != [t.params for t in a.trials]


# --- The user's measures (issue 14): constrained ratio and the user-reference hypervolume --------

def test_constrained_ratio_on_the_hand_made_table(table):
    measures = table.measures()
    # Dense 0.80: within 0.5 and 1.0 points only A (dense, 1x) and F (0.90, 8/7) qualify; B (0.78)
    # is 2 points below, so it counts from delta 2 on.
    assert table.best_within([table.point(k) for k in table.acc], 0.5) == pytest.approx(8 / 7)
    assert table.best_within([table.point(k) for k in table.acc], 2.0) == pytest.approx(4 / 3)
    assert measures["within 0.5"]([]) == 0.0
    assert measures["within 0.5"]([table.point((1.0, 1.0))]) == pytest.approx(7 / 8)
    assert measures["within 1"]([table.point((1.0, 0.5)), table.point((0.5, 0.75))]) == 0.0  # fast but too inaccurate
    assert measures["within 0.5"]([table.point(TRAP), table.point((1.0, 1.0))]) == pytest.approx(1.0)


def test_user_hypervolume_ignores_what_a_user_would_not_take(table):
    # Reference (0.80 - 0.10, speedup 1): only B (0.78, 4/3) and F (0.90, 8/7) add area; C (0.70, 2)
    # and E (0.50, 8/3), fast but far below dense, add nothing (they dominate the (0, 0) measure).
    full = 0.2 * (8 / 7 - 1) + 0.08 * (4 / 3 - 8 / 7)
    assert table.user_hypervolume([table.point(k) for k in table.acc]) == pytest.approx(full)
    assert table.user_hypervolume([table.point((1.0, 0.5)), table.point((0.5, 0.75))]) == 0.0
    assert table.measures()["HV, user reference"]([table.point(TRAP)]) == pytest.approx(0.2 * (8 / 7 - 1) / full)


def test_replay_curves_count_a_point_from_the_epoch_it_completed():
    run = replay_mod.Replay(found=[(3, (0.8, 1.0)), (5, (0.9, 2.0))], budget=6, trials=[], repeats=0)
    assert run.curve(len) == [0, 0, 0, 1, 1, 2, 2]
    assert run.hv == pytest.approx([0, 0, 0, 0.8, 0.8, 1.8, 1.8])


def test_mean_table_and_extras_load(tmp_path):
    rows = [{**r, "seed": s, "val_acc": [a + 0.02 * s for a in r["val_acc"]],
             "train_seconds": [t * (1 + s) for t in r["train_seconds"]]} for s in (0, 1) for r in ROWS]
    extras = [{"name": "dense, 2 of 3 epochs", "kind": "shorter", "seed": s, "val_acc": [0.5, 0.7 + 0.02 * s],
               "train_seconds": [4.0 * (1 + s)] * 2} for s in (0, 1)]
    path = tmp_path / "grid.json"
    path.write_text(__import__("json").dumps({"proxy": {}, "configs": rows, "extras": extras}))
    mean = Table.load(path)  # several seeds: the mean by default
    assert mean.seeds == [0, 1] and mean.dense_acc == pytest.approx(0.81)
    assert mean.point(TRAP) == pytest.approx((0.91, 8 / 7))  # seconds averaged epoch by epoch, ratios kept
    (extra,) = mean.extras
    assert extra.kind == "shorter" and extra.acc == pytest.approx(0.71)
    assert extra.speedup == pytest.approx(18 / 12)
    one = Table.load(path, "1")
    assert one.seeds == [1] and one.dense_acc == pytest.approx(0.82) and one.extras[0].acc == pytest.approx(0.72)
    with pytest.raises(SystemExit, match="not 7"):
        Table.load(path, "7")
    # With a dense run trained beside the extras, their speedups are against it, not the grid's dense.
    extras += [{"name": "dense (reference)", "kind": "reference", "seed": s, "val_acc": [0.6, 0.7, 0.8],
                "train_seconds": [5.0 * (1 + s)] * 3} for s in (0, 1)]
    path.write_text(__import__("json").dumps({"proxy": {}, "configs": rows, "extras": extras}))
    timed = Table.load(path)
    assert [e.name for e in timed.extras] == ["dense, 2 of 3 epochs"]
    assert timed.extras[0].speedup == pytest.approx(22.5 / 12) and timed.reference == pytest.approx((0.8, 22.5))



def test_rows_timed_on_another_cpu_are_rescaled_by_dense_there(tmp_path):
    """A table built over several sessions: seed 1's last rows ran on a CPU 1.5x slower. Against
    the grid's dense (timed on the first CPU) they would look 1.5x slower than they are; scaled by
    dense's time on each CPU (the extras' dense reference ran on the slow one), the speedups are
    the single-CPU ones. Without a dense run on the slow CPU there is nothing to scale by."""
    import json

    rows = [{**r, "seed": 0} for r in ROWS] + [{**r, "seed": 1} for r in ROWS[:3]]
    rows += [{**r, "seed": 1, "cpu": "slow", "train_seconds": [1.5 * t for t in r["train_seconds"]]} for r in ROWS[3:]]
    extras = [{"name": "dense (reference)", "kind": "reference", "seed": 1, "cpu": "slow", "val_acc": [0.6, 0.7, 0.8],
               "train_seconds": [6.0] * 3}]
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"proxy": {}, "machine": {"cpu": "fast"}, "configs": rows, "extras": extras}))
    mean = Table.load(path)
    assert mean.rescaled == {"slow": pytest.approx(12 / 18)}
    for key in mean.acc:
        assert mean.point(key)[1] == pytest.approx(Table(ROWS).point(key)[1])
    assert Table.load(path, "1").point(TRAP)[1] == pytest.approx(8 / 7)
    path.write_text(json.dumps({"proxy": {}, "machine": {"cpu": "fast"}, "configs": rows, "extras": []}))
    with pytest.raises(SystemExit, match="no dense run on that CPU"):
        Table.load(path)

# --- Syne Tune's MOASHA, driven as shipped (the `bench` extra; CI installs it) ---------------------

def test_syne_tune_moasha_on_the_hand_made_table(table):
    pytest.importorskip("syne_tune", reason="Syne Tune is the `bench` extra: pip install -e '.[bench]'")
    strategy = STRATEGIES["Syne Tune MOASHA"]
    stopped_somewhere = False
    for seed in range(8):
        run = replay(table, strategy, seed=seed, budget_epochs=45)
        key = lambda t: (t.params["example_keep"], t.params["token_keep"])
        assert run.trials[0].params == {"example_keep": 1.0, "token_keep": 1.0} and run.trials[0].state == "complete"
        assert len({key(t) for t in run.trials}) == len(run.trials)  # never trained twice
        assert sorted(p for _, p in run.found) == sorted(table.point(key(t)) for t in run.trials if t.state == "complete")
        pruned = [t for t in run.trials if t.state == "pruned"]
        assert all(t.epochs < 3 for t in pruned)
        stopped_somewhere |= bool(pruned)
    assert stopped_somewhere  # its own rungs are in effect
    a, b = (replay(table, strategy, seed=2, budget_epochs=45) for _ in range(2))
    assert a.trials == b.trials and a.found == b.found

