"""Trainer and `trilevel-train`: learning, metrics, resume, divergence, bad input, DDP on CPU."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trilevel.core import RunConfig, SparsityConfig, Trainer, train
from trilevel.core.cli import main

TINY = {"depth": 2, "embed_dim": 32, "num_heads": 2}
BIN = Path(sys.executable).parent


def tiny_config(tmp_path=None, **kw):
    base = dict(model="vit_t", model_kwargs=TINY, img_size=16, patch_size=4, epochs=1, batch_size=32,
                lr=2e-3, warmup=0.0, drop_path=0.0, augment=False,
                output=str(tmp_path) if tmp_path else None)
    base.update(kw)
    return RunConfig(**base)


def test_one_epoch_on_digits_learns_above_chance(tmp_path):
    m = train(tiny_config(tmp_path, epochs=2))
    assert m["status"] == "completed"
    assert m["val_acc"] > 0.25  # 10 classes: chance is 0.10
    assert len(m["history"]) == 2 and m["train_seconds"] > 0 and m["flops_per_image"] > 0
    assert m["images_per_second"] > 0


def test_default_proxy_recipe_learns_digits_clearly_above_chance():
    """The product default (deit_t, the proxy recipe, digits at 16 px), shortened to 3 epochs."""
    m = train(RunConfig(epochs=3, device="cpu"))
    assert m["config"]["recipe"] == "proxy" and m["img_size"] == 16
    assert m["chance_acc"] < 0.12 and m["val_acc"] > 0.4, [h["val_acc"] for h in m["history"]]


def test_sparse_training_records_keeps_and_fewer_flops(tmp_path):
    sparse = tiny_config(sparsity=SparsityConfig(
        example_keep=0.5, token_keep=0.5, attention_keep=0.5, schedule="constant", token_blocks=[0]))
    trainer = Trainer(sparse)
    m = trainer.fit()
    h = m["history"][0]
    assert h["token_keep"] == 0.5 and h["attention_keep"] == 0.5
    assert h["active_examples"] == round(0.5 * m["num_train"])
    dense = Trainer(tiny_config())
    assert trainer.flops_per_image(0.5, 1.0) < 0.8 * dense.flops_per_image(1.0, 1.0)
    assert m["train_flops"] < 0.5 * dense.planned_train_flops()


def test_checkpoint_resume_continues(tmp_path):
    first = train(tiny_config(tmp_path, epochs=1))
    cfg = tiny_config(tmp_path, epochs=2)
    resumed = train(cfg, resume=True)
    assert resumed["epochs"] == 2
    assert resumed["history"][0] == first["history"][0]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2


def test_model_ema_is_validated_and_resumes_exactly(tmp_path):
    """With `model_ema`, validation scores timm's EMA weights; a resumed run continues the average."""
    straight = Trainer(tiny_config(epochs=2, model_ema=0.9))
    whole = straight.fit()
    raw = straight.model.state_dict()
    ema = straight.ema.module.state_dict()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].is_floating_point())

    def stop_after_first_epoch(metrics, trainer):
        raise KeyboardInterrupt  # the checkpoint of epoch 1 is written before the callback

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, epochs=2, model_ema=0.9), callback=stop_after_first_epoch)
    resumed = train(tiny_config(tmp_path, epochs=2, model_ema=0.9), resume=True)
    assert resumed["val_acc"] == pytest.approx(whole["val_acc"])
    assert resumed["config"]["model_ema"] == 0.9
    assert Trainer(tiny_config()).ema is None  # off by default (both recipes)


def test_split_seed_fixes_the_validation_split_across_training_seeds():
    def val_targets(**kw):
        return Trainer(tiny_config(**kw)).val_set.targets.tolist()

    assert RunConfig(seed=3).data_seed == 3  # default: the split follows the training seed
    assert val_targets(seed=1) != val_targets(seed=2)
    assert val_targets(seed=1, split_seed=0) == val_targets(seed=2, split_seed=0)


def test_resume_refuses_a_different_run_or_missing_checkpoint(tmp_path):
    from trilevel.core import UserError

    train(tiny_config(tmp_path, epochs=1))
    with pytest.raises(UserError, match="different run.*batch_size"):
        train(tiny_config(tmp_path, epochs=2, batch_size=16), resume=True)
    with pytest.raises(UserError, match="nothing to resume"):
        train(tiny_config(tmp_path / "empty", epochs=2), resume=True)


def test_nan_loss_ends_with_clear_status():
    trainer = Trainer(tiny_config())
    trainer.model.head.register_forward_hook(lambda mod, inp, out: out * float("nan"))
    m = trainer.fit()
    assert m["status"].startswith("diverged") and "nan" in m["status"]


def test_cli_writes_metrics_and_flags_override_config(tmp_path, capsys):
    cfg = tiny_config(epochs=3, sparsity=SparsityConfig(token_keep=0.9))
    path = tmp_path / "run.yaml"
    path.write_text(cfg.to_yaml())
    out = tmp_path / "out"
    rc = main(["--config", str(path), "--epochs", "1", "--token-keep", "0.6", "--output", str(out), "--quiet"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 1 and m["config"]["sparsity"]["token_keep"] == 0.6
    for key in ("val_acc", "train_seconds", "images_per_second", "flops_per_image", "history", "config"):
        assert key in m
    assert 0 <= m["val_acc"] <= 1


BAD_INPUTS = [
    (["--model", "deit_tiny"], "unknown model 'deit_tiny'.*deit_t"),
    (["--example-keep", "0"], "example_keep must be in \\(0, 1\\]"),
    (["--token-keep", "1.5"], "token_keep must be in \\(0, 1\\]"),
    (["--dataset", "folder", "--data", "/nonexistent/dir"], "does not exist|not found|missing"),
    (["--img-size", "30", "--patch-size", "4"], "not divisible"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--model", "resnet18"], "not a timm VisionTransformer"),
]


@pytest.mark.parametrize("args,pattern", BAD_INPUTS)
def test_cli_bad_input_one_line_no_traceback(tmp_path, args, pattern):
    import re

    proc = subprocess.run([str(BIN / "trilevel-train"), *args, "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("text,pattern", [
    ("model: [deit_t\n", "malformed YAML"),
    ("modle: deit_t\n", "unknown key 'modle'.*did you mean 'model'"),
    ("sparsity:\n  token_kep: 0.5\n", "unknown key 'token_kep'.*token_keep"),
    # a sparsity key at the top level, and a run key under sparsity: named where they belong
    ("token_kep: 0.7\n", r"unknown key 'token_kep' in run config \(did you mean 'sparsity.token_keep'\?\)"),
    ("token_keep: 0.7\n", r"did you mean 'sparsity.token_keep'\?"),
    ("sparsity:\n  epochs: 3\n", r"unknown key 'epochs' in sparsity config \(did you mean 'epochs' at the top level"),
    ("epoch: 3\n", r"did you mean 'epochs'\?"),
])
def test_cli_bad_config_file(tmp_path, capsys, text, pattern):
    import re

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(pattern, err), err


DEIT_COMPONENTS = dict(recipe="deit", mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, aug_repeats=3,
                       augment=True, label_smoothing=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", [{}, DEIT_COMPONENTS], ids=["plain", "deit-components"])
def test_ddp_two_processes_on_cpu_agree_on_examples(tmp_path, recipe):
    """Every rank holds the same active examples after each remove/restore step, also with the DeiT
    recipe's repeated augmentation (copies dealt across ranks) and Mixup/CutMix statistics."""
    cfg = tiny_config(tmp_path / "ddp", epochs=3, batch_size=16, sparsity=SparsityConfig(
        example_keep=0.6, example_interval=0.34, example_swap=0.1), **recipe)
    path = tmp_path / "ddp.yaml"
    path.write_text(cfg.to_yaml())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "trilevel.core.cli",
         "--config", str(path), "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["epochs"] == 3
    assert sum(h["swapped"] for h in m["history"]) > 0
    assert all(h["examples_in_sync"] for h in m["history"])
    assert m["config"]["aug_repeats"] == recipe.get("aug_repeats", 0)
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert len(state["rng_states"]) == 2  # both ranks' generators
    assert not torch.equal(state["rng_states"][0]["torch"], state["rng_states"][1]["torch"])


# --- the full recipes' components (timm's own) ------------------------------------------------


def test_deit_components_train_one_epoch_with_soft_targets_and_layer_decay():
    cfg = tiny_config(recipe="deit", mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, augment=True,
                      scale=0.08, layer_decay=0.75, label_smoothing=0.1, train_subset=256, val_subset=64)
    trainer = Trainer(cfg)
    assert trainer.mixup is not None and trainer.aug_repeats == 0  # repeated augmentation: DDP only, as timm
    x = torch.randn(8, 1, 16, 16)
    y = torch.arange(8) % 10
    mixed, target = trainer.mixup(x, y)
    assert target.shape == (8, trainer.info.num_classes)
    assert torch.allclose(target.sum(1), torch.ones(8)) and (target.max(1).values < 1).all()  # soft
    scales = sorted({g.get("lr_scale", 1.0) for g in trainer.optimizer.param_groups})
    assert len(scales) > 2 and scales[-1] == 1.0 and scales[0] < 0.75 ** 2  # deeper layers move more
    assert "RandAugment" in repr(trainer.train_set.transform) and "RandomErasing" in repr(trainer.train_set.transform)
    m = trainer.fit()
    assert m["status"] == "completed" and m["config"]["mixup"] == 0.8


def test_repeated_augmentation_plan_deals_copies_across_ranks_and_skips_pruned_examples():
    from trilevel.core.examples import ExamplePruner

    pruner = ExamplePruner(SparsityConfig(example_keep=0.5, example_criterion="random"), 40, epochs=3, seed=0)
    plans = [pruner.epoch_plan(1, 7, rank, 3, repeats=3) for rank in range(3)]
    active = set(torch.nonzero(pruner.active).flatten().tolist())
    assert len(active) == 20
    per_rank = [[i for b in p.batches for i in b] for p in plans]
    assert all(len(items) == 7 for items in per_rank)  # ceil(20 active / 3 ranks): an epoch's usual length
    seen = [i for items in per_rank for i in items]
    assert set(seen) <= active and len(set(seen)) == 7  # a third of the active examples, 3 copies each
    for i in set(seen):  # the copies of one example land on different ranks
        assert seen.count(i) == 3 and all(i in items for items in per_rank)


def test_example_statistics_with_repeated_copies_any_correct_and_mean_loss():
    from trilevel.core.examples import ExamplePruner

    pruner = ExamplePruner(SparsityConfig(example_keep=0.5, example_criterion="loss"), 4, epochs=4, seed=0)
    pruner.record(torch.tensor([0, 0, 1]), torch.tensor([False, True, False]), torch.tensor([1.0, 3.0, 5.0]))
    pruner.end_epoch(0)
    assert pruner.last_correct[:2].tolist() == [1, 0]
    assert pruner.loss[:2].tolist() == [2.0, 5.0]


def test_resume_with_random_augmentation_and_mixup_is_exact(tmp_path):
    """The checkpoint holds python's, numpy's and torch's generators: a resumed run with RandAugment,
    random erasing and Mixup/CutMix continues exactly as the uninterrupted one."""
    kw = dict(epochs=2, mixup=0.8, cutmix=1.0, aa="rand-m9-mstd0.5-inc1", reprob=0.25, augment=True,
              train_subset=128, val_subset=64)
    straight = Trainer(tiny_config(**kw))
    whole = straight.fit()

    def stop_after_first_epoch(metrics, trainer):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, **kw), callback=stop_after_first_epoch)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert len(state["rng_states"]) == 1 and state["rng_states"][0]["numpy"]["keys"].numel() == 624
    resumed = train(tiny_config(tmp_path, **kw), resume=True)
    assert resumed["history"][1]["train_loss"] == whole["history"][1]["train_loss"]
    assert resumed["val_acc"] == whole["val_acc"]


def test_randaugment_at_full_magnitude_runs():
    """DeiT's RandAugment (timm) posterizes to 0 bits at magnitude 10; Pillow 13 refuses that (the
    pillow<13 bound in pyproject.toml). Fails if the installed Pillow and timm disagree again."""
    import numpy as np
    from PIL import Image
    from timm.data.auto_augment import AugmentOp

    for mode in ("RGB", "L"):
        img = Image.fromarray(np.full((8, 8, 3) if mode == "RGB" else (8, 8), 200, dtype=np.uint8), mode)
        out = AugmentOp("PosterizeIncreasing", prob=1.0, magnitude=10)(img)
        assert np.asarray(out).max() == 0  # 0 bits kept: black, as the TF reference


def test_worker_processes_persist_across_epochs_and_change_nothing(tmp_path):
    """One DataLoader per run (its workers kept alive) fed each epoch's plan: with deterministic
    transforms, 2 workers train exactly what the main process trains."""
    kw = dict(epochs=2, train_subset=128, val_subset=64, sparsity=SparsityConfig(example_keep=0.5))
    inline = Trainer(tiny_config(workers=0, **kw))
    a = inline.fit()
    pooled = Trainer(tiny_config(workers=2, **kw))
    first_epoch = pooled.train_epoch(0)
    loader = pooled._train_loader
    pooled.history.append({**first_epoch, **pooled.evaluate()})
    pooled.epoch = 1
    b = pooled.fit()
    assert pooled._train_loader is loader and loader.persistent_workers and b["workers"] == 2
    assert [h["train_loss"] for h in b["history"]] == [h["train_loss"] for h in a["history"]]
    assert b["val_acc"] == a["val_acc"] and a["workers"] == 0


def test_automatic_workers_none_on_cpu_some_on_gpu(monkeypatch):
    from trilevel.core.trainer import MAX_AUTO_WORKERS, loader_workers

    assert loader_workers(None, torch.device("cpu")) == 0
    assert loader_workers(3, torch.device("cpu")) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert loader_workers(None, torch.device("cuda")) == MAX_AUTO_WORKERS
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert loader_workers(None, torch.device("cuda")) == 4


def test_train_returns_typed_metrics_still_readable_by_key(tmp_path):
    """`train` / `Trainer.fit` return `RunMetrics`: attributes for Python users, and the keys of the
    dict it replaced for scripts written against that; metrics.json is its `to_dict`."""
    from trilevel.core import RunMetrics

    m = train(tiny_config(tmp_path, epochs=1, train_subset=128, val_subset=64))
    assert isinstance(m, RunMetrics) and m.status == "completed" and m.epochs == 1
    assert m["val_acc"] == m.val_acc and m.get("paired_speedup") == m.paired_speedup and "history" in m
    assert "nope" not in m and m.get("nope") is None
    with pytest.raises(KeyError):
        m["nope"]
    assert dict(m) == m.to_dict() and json.loads(json.dumps(m.to_dict()))["epochs"] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.val_acc = 1.0
