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
