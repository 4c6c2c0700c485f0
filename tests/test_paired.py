"""Paired speed (core/paired.py): measured inside the run without changing what it trains."""

import pytest
import torch

from trilevel.core import RunConfig, SparsityConfig, Trainer
from trilevel.core.errors import UserError
from trilevel.core.paired import keep_key

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
    for ha, hb in zip(a["history"], b["history"]):
        assert (ha["train_loss"], ha["val_acc"], ha["active_examples"]) == (hb["train_loss"], hb["val_acc"], hb["active_examples"])
    for (name, pa), (_, pb) in zip(with_pairs.model.state_dict().items(), without.model.state_dict().items()):
        assert torch.equal(pa, pb), name


def test_each_distinct_keep_is_measured_once_when_the_schedule_reaches_it():
    trainer = Trainer(tiny(2, token_keep=0.5, schedule="warmup_cosine", schedule_warmup=0.0, schedule_decay=0.5))
    m = trainer.fit()
    reached = {keep_key(*k) for e in range(3) for k in trainer.epoch_keeps(e)} - {(1.0, 1.0)}
    assert set(trainer.paired.ratios) == reached
    assert all(len(v) == 2 for v in trainer.paired.ratios.values())  # one burst of 2 pairs per keep
    assert [h["time_ratio"] for h in m["history"]] == [trainer.epoch_time_ratio(e) for e in range(3)]
    assert m["paired_cost"] > 0 and m["paired_speedup"] == pytest.approx(1 / m["paired_cost"])
    assert m["paired_seconds"] == pytest.approx(sum(h["paired_seconds"] for h in m["history"]))


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


def test_resume_keeps_the_measurements(tmp_path):
    sparsity = dict(token_keep=0.5, schedule="constant")
    first = Trainer(tiny(2, **sparsity).replace(epochs=1, output=str(tmp_path)))
    first.fit()
    resumed = Trainer(tiny(2, **sparsity).replace(output=str(tmp_path)))
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")
    assert resumed.paired.ratios == first.paired.ratios
    seconds = resumed.paired.seconds
    resumed.fit()
    assert resumed.paired.seconds == seconds  # nothing measured again: the constant keep was known


def test_speed_pairs_must_be_a_non_negative_integer():
    with pytest.raises(UserError, match="speed_pairs"):
        RunConfig(speed_pairs=-1)
    with pytest.raises(UserError, match="speed_pairs"):
        RunConfig(speed_pairs=True)


def test_keep_key_rounds_to_the_measurement_step():
    assert keep_key(0.501, 1.0) == (0.5, 1.0)
    assert keep_key(0.999, 0.9999) == (1.0, 1.0)
