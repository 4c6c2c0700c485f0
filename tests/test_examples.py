"""Example-level pruning: forgetting counts, remove/restore, InfoBatch, random, epoch plans."""

import pytest
import torch

from trilevel.core import ExamplePruner, SparsityConfig
from trilevel.core.examples import NEVER_LEARNED


def run_epochs(pruner, outcomes):
    """Feed hand-made per-epoch correctness (one row per epoch, one column per example)."""
    for epoch, row in enumerate(outcomes):
        idx = torch.arange(len(row))
        pruner.record(idx, torch.tensor(row, dtype=torch.bool), torch.zeros(len(row)))
        pruner.end_epoch(epoch)


def test_forgetting_counts_on_hand_made_sequence():
    cfg = SparsityConfig(example_keep=0.5, example_interval=1.0)  # no swap inside 5 epochs
    pruner = ExamplePruner(cfg, num_examples=5, epochs=5)
    run_epochs(pruner, [
        [1, 0, 1, 0, 1],
        [0, 0, 1, 1, 1],
        [1, 0, 1, 0, 1],
        [0, 0, 1, 1, 0],
    ])
    assert pruner.forgetting.tolist() == [2, 0, 0, 1, 1]
    assert pruner.forgetting_scores().tolist() == [2, NEVER_LEARNED, 0, 1, 1]


def test_unseen_examples_keep_their_state():
    cfg = SparsityConfig(example_keep=0.5, example_interval=1.0)
    pruner = ExamplePruner(cfg, num_examples=3, epochs=5)
    pruner.record(torch.tensor([0, 1]), torch.tensor([True, True]), torch.zeros(2))
    pruner.end_epoch(0)
    pruner.record(torch.tensor([0]), torch.tensor([False]), torch.zeros(1))  # 1 not presented
    pruner.end_epoch(1)
    assert pruner.forgetting.tolist() == [1, 0, 0]
    assert pruner.last_correct.tolist() == [0, 1, -1]


def test_remove_restore_invariants():
    n = 100
    cfg = SparsityConfig(example_keep=0.6, example_interval=0.2, example_swap=0.1, example_max_swaps=2)
    pruner = ExamplePruner(cfg, num_examples=n, epochs=10, seed=3)
    assert int(pruner.active.sum()) == 60
    seen_scores = {}
    remove_restore = pruner._remove_restore

    def spy(epoch):  # the scores the removal used (the window restarts right after it)
        seen_scores["now"] = pruner.forgetting_scores().clone()
        return remove_restore(epoch)

    pruner._remove_restore = spy
    history = []
    for epoch in range(10):
        before = pruner.active.clone()
        active = before.nonzero().squeeze(1)
        # Active example i is forgotten i % 7 times: feed alternating outcomes.
        for t in range(2):
            correct = torch.tensor([(t == 0) or (i % 7 == 0) for i in active.tolist()])
            pruner.record(active, correct, torch.zeros(len(active)))
        info = pruner.end_epoch(epoch)
        after = pruner.active
        removed, restored = before & ~after, ~before & after
        assert int(after.sum()) == 60  # constant active size
        if info.get("swapped"):
            assert int(removed.sum()) == int(restored.sum()) == 10
            scores = seen_scores["now"]
            # removed ones are the least forgotten of the active set
            assert scores[removed].max() <= scores[before & after].min()
            history.append(epoch)
    assert history == [1, 3]  # every 2 epochs, at most 2 swaps
    assert pruner.swaps == 2


def test_epoch_plan_partitions_ranks_and_drops_last():
    cfg = SparsityConfig(example_keep=0.5, example_criterion="random")
    pruner = ExamplePruner(cfg, num_examples=101, epochs=3, seed=1)
    plans = [pruner.epoch_plan(0, batch_size=8, rank=r, world=2) for r in range(2)]
    seen = [i for p in plans for b in p.batches for i in b]
    assert len(seen) == len(set(seen)) == 48  # 50 active -> 25 per rank -> 3 full batches
    assert all(len(b) == 8 for p in plans for b in p.batches)
    assert plans[0].num_active == 50
    again = pruner.epoch_plan(0, batch_size=8, rank=0, world=2)
    assert again.batches == plans[0].batches  # same seed, same epoch: same choice
    other = pruner.epoch_plan(1, batch_size=8, rank=0, world=2)
    assert other.batches != plans[0].batches


def test_infobatch_prunes_below_mean_and_rescales():
    n = 1000
    cfg = SparsityConfig(example_keep=0.7, example_criterion="loss", example_anneal=0.25)
    pruner = ExamplePruner(cfg, num_examples=n, epochs=8, seed=0)
    plan = pruner.epoch_plan(0, batch_size=10)
    assert plan.weights is None and plan.num_active == n  # no losses yet: everything
    losses = torch.linspace(0, 1, n) ** 2  # skewed: 577 of 1000 below the mean
    pruner.record(torch.arange(n), torch.ones(n, dtype=torch.bool), losses)
    pruner.end_epoch(0)
    expected = pruner.expected_active(1)
    plan = pruner.epoch_plan(1, batch_size=10)
    below = losses < losses.mean()
    n_below = int(below.sum())
    assert plan.num_active == expected == n - n_below + int(0.7 * n_below)
    assert not (~pruner.active & ~below).any()  # only below-mean examples are skipped
    kept_below = pruner.active & below
    assert (plan.weights[kept_below] == 1 / 0.7).all()  # exactly 1/r: unbiased in expectation
    assert (plan.weights[~below] == 1).all()
    annealed = pruner.epoch_plan(6, batch_size=10)  # (6 + 1) > 0.75 * 8: off, as InfoBatch
    assert annealed.weights is None and annealed.num_active == n
    assert pruner.expected_active(6) == n


def test_infobatch_weights_are_bounded_at_ten():
    cfg = SparsityConfig(example_keep=0.02, example_criterion="loss")
    pruner = ExamplePruner(cfg, num_examples=200, epochs=8, seed=0)
    pruner.record(torch.arange(200), torch.ones(200, dtype=torch.bool), torch.linspace(0, 1, 200))
    pruner.end_epoch(0)
    plan = pruner.epoch_plan(1, batch_size=10)
    assert plan.weights.max().item() == pytest.approx(10.0)  # keep_ratio floored at 0.1
    assert int((pruner.active & (plan.weights > 1)).sum()) == int(0.1 * 100)


def test_random_visits_keep_fraction_each_epoch():
    pruner = ExamplePruner(SparsityConfig(example_keep=0.3, example_criterion="random"), 200, 4)
    a = pruner.epoch_plan(0, batch_size=1, drop_last=False)
    b = pruner.epoch_plan(1, batch_size=1, drop_last=False)
    assert a.num_active == b.num_active == 60
    assert {i for x in a.batches for i in x} != {i for x in b.batches for i in x}


def test_state_round_trip():
    cfg = SparsityConfig(example_keep=0.5, example_interval=0.5)
    a = ExamplePruner(cfg, 20, 4, seed=2)
    run_epochs(a, [[i % 2 for i in range(20)], [1] * 20])
    b = ExamplePruner(cfg, 20, 4, seed=9)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.active, b.active) and torch.equal(a.forgetting_scores(), b.forgetting_scores())
    assert b.swaps == a.swaps == 1
