"""The replay harness on a hand-made table: known front and hypervolume, determinism, and that
early-stopped trials never reach the front (the bug Ray's OptunaSearch has, see search/searcher)."""

import importlib.util
import math
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


SYNE_TUNE_MISSING = "Syne Tune is the `bench` extra: pip install -e '.[bench]'"


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_replay_is_deterministic_for_a_seed(table, name):
    strategy = STRATEGIES[name]
    if strategy.stopping == "synetune":
        pytest.importorskip("syne_tune", reason=SYNE_TUNE_MISSING)
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
    pytest.importorskip("syne_tune", reason=SYNE_TUNE_MISSING)
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



# --- Cross-seed scoring (issue 23): the exported pick trained again on another seed ---------------

def _seed_rows(seed, acc_b, acc_f):
    """ROWS with B (1.0, 0.75) and F (0.5, 0.5) at the given final accuracies; F at 2 s per epoch (2x)."""
    rows = []
    for r in ROWS:
        key = (r["params"]["example_keep"], r["params"]["token_keep"])
        acc = list(r["val_acc"])
        if key == (1.0, 0.75):
            acc[-1] = acc_b
        if key == TRAP:
            acc[-1] = acc_f
        seconds = [2.0] * 3 if key == TRAP else r["train_seconds"]
        rows.append({**r, "seed": seed, "val_acc": acc, "train_seconds": seconds, "train_flops": [3.0, 2.0, 1.0]})
    return rows


# Dense is 0.80 on both seeds. Seed 0: F 0.90 at 2x (the best within 0.5 points), B 0.78 (out).
# Seed 1: F 0.60 (out), B 0.80 at 4/3 (the best within 0.5 points).
CROSS_ROWS = _seed_rows(0, acc_b=0.78, acc_f=0.90) + _seed_rows(1, acc_b=0.80, acc_f=0.60)
B = (1.0, 0.75)


@pytest.fixture()
def seed_tables(tmp_path):
    import json

    path = tmp_path / "two_seeds.json"
    path.write_text(json.dumps({"proxy": {}, "configs": CROSS_ROWS, "extras": []}))
    return path, {s: Table.load(path, s) for s in (0, 1)}


def test_a_pick_best_on_its_seed_but_bad_on_the_other_scores_zero_there(seed_tables):
    _, tables = seed_tables
    t0, t1 = tables[0], tables[1]
    assert t0.pick(list(t0.acc), 0.5) == TRAP and t1.pick(list(t1.acc), 0.5) == B
    assert t0.pick([], 0.5) is None and t0.pick([(1.0, 0.5)], 0.5) is None  # C: fast, 10 points below
    assert t0.pick([(1.0, 1.0), (1.0, 0.5)], 0.5) == (1.0, 1.0)  # dense is always within
    assert t0.score_pick(TRAP, 0.5) == pytest.approx(1.0)  # the same seed: the table's best
    assert t1.score_pick(TRAP, 0.5) == 0.0  # trained again on seed 1 it is 20 points below dense
    assert t0.score_pick(B, 0.5) == 0.0  # seed 1's best is 2 points below dense on seed 0
    assert t0.score_pick(B, 2.0) == pytest.approx((4 / 3) / 2)  # within 2 points it holds: 4/3 of the best 2x
    assert t1.score_pick((1.0, 1.0), 0.5) == pytest.approx(3 / 4) and t0.score_pick(None, 0.5) == 0.0


def test_cross_seed_scores_the_exported_pick_on_the_other_seed(seed_tables):
    _, tables = seed_tables
    strategy = Strategy("random", None)  # no early stopping: every configuration completes
    runs = {"random": {s: [replay(t, strategy, seed=i, budget_epochs=30) for i in range(3)] for s, t in tables.items()}}
    at = [0, 30]
    cross = replay_mod.cross_seed(tables, runs, at)
    assert cross["directions"] == ["0->1", "1->0"]
    block = cross["measures"]["within 0.5"]
    row = block["strategies"]["random"]
    for d in ("0->1", "1->0"):
        assert row["cross"][d]["0"]["mean"] == 0.0  # nothing has completed yet: no pick
    # After the whole grid: seed 0's pick F is 20 points below dense on seed 1 (0); seed 1's pick B
    # is 2 points below dense on seed 0 (0) -- both directions lose what the searched seed promised.
    assert row["same_seed"]["0"]["30"]["mean"] == pytest.approx(1.0)
    assert row["same_seed"]["1"]["30"]["mean"] == pytest.approx(1.0)
    assert row["cross"]["0->1"]["30"]["mean"] == 0.0 and row["cross"]["1->0"]["30"]["mean"] == 0.0
    assert row["held"]["0->1"]["30"] == 0.0 and row["speedup_on_scored"]["0->1"]["30"] == pytest.approx(2.0)
    assert row["picks"]["0->1"][0][-1] == list(TRAP) and row["picks"]["1->0"][0][-1] == list(B)
    refs = block["references"]
    assert refs["exhaustive: every configuration of the searched seed"]["cross"]["mean"]["30"]["mean"] == 0.0
    dense = refs["dense (no search)"]["cross"]
    assert dense["0->1"]["30"]["mean"] == pytest.approx(3 / 4) and dense["1->0"]["30"]["mean"] == pytest.approx(1 / 2)
    assert ["dense (no search)", "random"] in block["beats"]["30"]  # not searching beats searching, both ways
    assert set(cross["measures"]) == {"within 0.5", "within 1"}  # the replay's DELTAS
    # The mean of the directions is taken per search seed, then over the seeds.
    assert row["cross"]["mean"]["30"]["mean"] == pytest.approx(0.0) and row["cross"]["mean"]["30"]["se"] == 0.0


def test_beats_needs_two_standard_errors_in_each_direction():
    def rows(**means):  # name -> ((mean 0->1, se), (mean 1->0, se))
        return {n: {"0->1": {"k": {"mean": a, "se": sa}}, "1->0": {"k": {"mean": b, "se": sb}}}
                for n, ((a, sa), (b, sb)) in means.items()}

    dirs = ["0->1", "1->0"]
    r = rows(x=((0.9, 0.01), (0.5, 0.01)), y=((0.5, 0.01), (0.9, 0.01)))  # reversed on the other seed
    assert replay_mod.compare("x", "y", r, dirs, "k") == "within noise" and replay_mod.beats_pairs(r, dirs, "k") == []
    r = rows(x=((0.9, 0.01), (0.9, 0.01)), y=((0.8, 0.01), (0.85, 0.01)))  # ahead in both, 0.05 > 2 x 0.014
    assert replay_mod.compare("x", "y", r, dirs, "k") == "ahead"
    assert replay_mod.compare("y", "x", r, dirs, "k") == "behind"
    r = rows(x=((0.9, 0.02), (0.9, 0.02)), y=((0.8, 0.02), (0.85, 0.02)))  # 0.05 < 2 x sqrt(2) x 0.02
    assert replay_mod.compare("x", "y", r, dirs, "k") == "within noise"


def test_projected_seconds_as_the_live_search_reports_them():
    rows = [{**r, "train_flops": [3.0, 2.0, 1.0]} for r in ROWS]
    t = Table(rows)
    dense = (1.0, 1.0)  # 4 s per epoch; FLOPs 3, 2, 1 of 6: seconds so far x 6 / FLOPs so far
    assert [t.projected_seconds(dense, e) for e in (1, 2, 3)] == pytest.approx([8.0, 9.6, 12.0])
    assert Table(ROWS).projected_seconds(dense, 1) == 12.0  # no FLOPs in the rows: the full seconds
    # The replay reports the projection where asked, and completed points are the same either way.
    full = replay(t, Strategy("tpe", "moasha"), seed=1, budget_epochs=30)
    projected = replay(t, Strategy("tpe", "moasha"), seed=1, budget_epochs=30, cost="projected")
    assert set(p for _, p in projected.found) <= {t.point(k) for k in t.acc}
    assert full.found[0] == projected.found[0]  # dense, never stopped
    with pytest.raises(ValueError, match="cost"):
        replay(t, Strategy("tpe", "moasha"), seed=1, budget_epochs=30, cost="wall")


def test_rung_epsilon_is_the_live_searchs_noise_rule(seed_tables, monkeypatch):
    from trilevel.reports.noise import run_sd

    path, tables = seed_tables
    assert replay_mod.num_val([0.5, 1 / 3, 0.25]) == 12 and replay_mod.num_val([math.pi / 4, math.e / 3]) is None
    assert tables[0].num_val == 100  # ROWS' accuracies are hundredths
    # Searching seed 0, the other seed's dense is the extra seed (run_sd floors its sd of 0 by the binomial error).
    assert tables[0].rung_epsilon() == pytest.approx(run_sd([0.80], 100))
    assert Table.load(path, "mean").rung_epsilon() == pytest.approx(run_sd([0.80, 0.80], 100))
    assert Table(ROWS).rung_epsilon() is None  # one seed: no extra dense seed, no ties (as the live search)
    seen = []

    class Spy(replay_mod.MOASHAScheduler):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs.get("epsilon"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(replay_mod, "MOASHAScheduler", Spy)
    replay(tables[0], Strategy("tpe", "moasha"), seed=0, budget_epochs=9, rung_epsilon=0.04)
    replay(tables[0], Strategy("tpe", "moasha", epsilon=1.0), seed=0, budget_epochs=9, rung_epsilon=0.04)
    replay(tables[0], Strategy("tpe", "asha_ws"), seed=0, budget_epochs=9, rung_epsilon=0.04)
    # a strategy's own epsilon first; none for the one-objective weighted sum
    assert seen == [{"val_acc": 0.04}, {"val_acc": 0.01}, None]


def test_cross_seed_cli_writes_both_scores(seed_tables, tmp_path, monkeypatch):
    import json

    path, _ = seed_tables
    out = tmp_path / "cross"
    monkeypatch.setattr(sys, "argv", ["replay.py", "--table", str(path), "--cross-seed", "--seeds", "2",
                                      "--only", "MO-ASHA + TPE,MO-ASHA + random", "--out", str(out)])
    replay_mod.main()
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["mode"] == "cross-seed" and data["cost"] == "projected" and data["rung_epsilon"] == "live"
    assert set(data["cross_seed"]["measures"]) == {"within 0.5", "within 1"}
    assert set(data["strategies"]) == {"MO-ASHA + TPE", "MO-ASHA + random"}  # the seed-mean score, secondary
    md = out.with_suffix(".md").read_text()
    assert "Cross-seed (primary)" in md and "Seed mean (secondary)" in md and "0→1" in md and "1→0" in md
