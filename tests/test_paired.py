"""Paired speed (core/paired.py): measured inside the run without changing what it trains."""

from collections import Counter

import pytest
import torch

from trilevel.core import RunConfig, SparsityConfig, Trainer
from trilevel.core.paired import BURSTS, keep_key

TINY = {"depth": 4, "embed_dim": 32, "num_heads": 2}


def tiny(pairs, **sparsity):
    return RunConfig(model="vit_t", model_kwargs=TINY, img_size=16, patch_size=4, epochs=3, batch_size=32,
                     lr=2e-3, warmup=0.1, drop_path=0.1, speed_pairs=pairs, sparsity=SparsityConfig(**sparsity))


SPARSE = [
    # attentive tokens with EViT fusion, attention masks, forgetting, the keep schedule moving
    dict(example_keep=0.7, token_keep=0.5, token_fuse=True, attention_keep=0.5, schedule="warmup_cosine",
         schedule_warmup=0.0, schedule_decay=0.5),
    # random input patch dropping draws from torch's generator inside the forward
    dict(token_keep=0.5, token_mode="input", token_sampling="random", schedule="constant"),
]


@pytest.mark.parametrize("sparsity", SPARSE, ids=["attentive", "input"])
def test_training_is_bit_identical_with_and_without_the_measurement(sparsity):
    with_pairs = Trainer(tiny(2, **sparsity))
    a = with_pairs.fit()
    rng_after = torch.get_rng_state()
    without = Trainer(tiny(0, **sparsity))
    b = without.fit()
    assert torch.equal(rng_after, torch.get_rng_state())  # the generators are where training left them
    assert a["paired_seconds"] > 0 and with_pairs.paired.ratios  # it did measure
    assert b["paired_cost"] is None and b["paired_speedup"] is None and not without.paired.ratios
    assert b["paired_cpu_share"] is None  # nothing timed
    for ha, hb in zip(a["history"], b["history"]):
        assert (ha["train_loss"], ha["val_acc"], ha["active_examples"]) == (hb["train_loss"], hb["val_acc"], hb["active_examples"])
    for (name, pa), (_, pb) in zip(with_pairs.model.state_dict().items(), without.model.state_dict().items()):
        assert torch.equal(pa, pb), name


def test_each_keep_is_timed_when_reached_and_again_while_the_run_stays_at_it():
    trainer = Trainer(tiny(2, token_keep=0.5, schedule="warmup_cosine", schedule_warmup=0.0, schedule_decay=0.3)
                      .replace(epochs=6))
    m = trainer.fit()
    epochs_at = Counter(keep_key(*k) for e in range(6) for k in set(trainer.epoch_keeps(e)))
    epochs_at.pop((1.0, 1.0), None)
    assert set(trainer.paired.ratios) == set(epochs_at)
    # one burst of 2 pairs in each epoch at the keep, up to BURSTS bursts, pooled
    assert {k: len(v) for k, v in trainer.paired.ratios.items()} == {k: 2 * min(n, BURSTS) for k, n in epochs_at.items()}
    assert max(epochs_at.values()) > BURSTS > min(epochs_at.values())  # the case covers both ends
    # each epoch report holds the estimate of its time; the last one holds every burst
    assert m["history"][-1]["time_ratio"] == trainer.epoch_time_ratio(5)
    assert m["paired_cost"] > 0 and m["paired_speedup"] == pytest.approx(1 / m["paired_cost"])
    assert m["paired_seconds"] == pytest.approx(sum(h["paired_seconds"] for h in m["history"]))
    # one thread timed in its own CPU time: it cannot have spent more than its wall time on a core
    assert 0 < m["paired_cpu_share"] <= 1.05


def test_dense_costs_exactly_one_and_is_never_timed():
    trainer = Trainer(tiny(2))
    m = trainer.fit()
    assert m["paired_cost"] == 1.0 and m["paired_speedup"] == 1.0 and m["paired_seconds"] == 0.0
    assert all(h["time_ratio"] == 1.0 for h in m["history"])


def test_example_pruning_alone_costs_the_share_of_examples_visited():
    trainer = Trainer(tiny(2, example_keep=0.5, example_criterion="random"))
    m = trainer.fit()
    visited = sum(h["active_examples"] for h in m["history"]) / (3 * m["num_train"])
    assert m["paired_cost"] == pytest.approx(visited) and m["paired_seconds"] == 0.0


def test_a_partial_run_projects_unmeasured_keeps_from_flops():
    """Before the schedule reaches a keep, its ratio is the FLOPs ratio x the latest measured time/FLOPs."""
    trainer = Trainer(tiny(2, token_keep=0.5, schedule="warmup_cosine", schedule_warmup=0.0, schedule_decay=0.5))
    assert trainer.epoch_time_ratio(2) == pytest.approx(trainer.flops_per_image(*trainer.epoch_keeps(2)[0])
                                                        / trainer.flops_per_image(1.0, 1.0))
    trainer.paired.ratios[keep_key(*trainer.epoch_keeps(0)[0])] = [0.9]
    dense = trainer.flops_per_image(1.0, 1.0)
    per_flop = 0.9 / (trainer.flops_per_image(*keep_key(*trainer.epoch_keeps(0)[0])) / dense)
    assert trainer.epoch_time_ratio(0) == 0.9
    assert trainer.epoch_time_ratio(2) == pytest.approx(per_flop * trainer.flops_per_image(*trainer.epoch_keeps(2)[0]) / dense)


def test_resume_keeps_the_measurements_and_completes_the_bursts(tmp_path):
    sparsity = dict(token_keep=0.5, schedule="constant")
    first = Trainer(tiny(2, **sparsity).replace(epochs=1, output=str(tmp_path)))
    first.fit()
    (key, values), = first.paired.ratios.items()
    resumed = Trainer(tiny(2, **sparsity).replace(epochs=BURSTS + 1, output=str(tmp_path)))
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")
    assert resumed.paired.ratios == first.paired.ratios
    resumed.fit()
    assert resumed.paired.ratios[key][:2] == values  # kept, then pooled with the later bursts
    assert len(resumed.paired.ratios[key]) == 2 * BURSTS  # and no burst past BURSTS
