"""Starting from weights: `--initial-checkpoint` (a local file, offline) and `--pretrained` (timm's hub),
both through timm's own loader; the head and position embeddings adapted by timm's functions."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trilevel.core import RunConfig, SparsityConfig, Trainer
from trilevel.core.errors import UserError
from trilevel.core.models import build_model

TINY = {"depth": 2, "embed_dim": 32, "num_heads": 2}
BIN = Path(sys.executable).parent


def _saved(tmp_path, **kw):
    torch.manual_seed(0)
    model = build_model("vit_t", num_classes=10, img_size=16, in_chans=1, patch_size=4, **TINY, **kw)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_initial_checkpoint_loads_exactly_when_shapes_match(tmp_path):
    source, path = _saved(tmp_path)
    loaded = build_model("vit_t", num_classes=10, img_size=16, in_chans=1, patch_size=4, initial_checkpoint=str(path),
                         **TINY)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_initial_checkpoint_adapts_head_position_embedding_and_channels(tmp_path):
    from timm.layers import resample_abs_pos_embed

    source, path = _saved(tmp_path)
    torch.manual_seed(1)
    fresh = build_model("vit_t", num_classes=5, img_size=32, in_chans=3, patch_size=4, **TINY)
    torch.manual_seed(1)
    loaded = build_model("vit_t", num_classes=5, img_size=32, in_chans=3, patch_size=4, initial_checkpoint=str(path),
                         **TINY)
    assert torch.equal(loaded.blocks[1].mlp.fc1.weight, source.blocks[1].mlp.fc1.weight)  # the body is the file's
    assert torch.equal(loaded.head.weight, fresh.head.weight)  # 10 -> 5 classes: timm's fresh head
    expected = resample_abs_pos_embed(source.pos_embed, (8, 8), num_prefix_tokens=1)  # 4x4 -> 8x8 patches
    assert torch.allclose(loaded.pos_embed, expected)
    assert loaded.patch_embed.proj.weight.shape[1] == 3  # 1-channel stem adapted to 3 channels


def test_a_trilevel_checkpoint_starts_a_new_run(tmp_path):
    """checkpoint.pt of a sparse run (weights under "model") initialises the next run, e.g. fine-tuning."""
    cfg = dict(model="vit_t", model_kwargs=TINY, img_size=16, patch_size=4, epochs=1, batch_size=32, lr=2e-3,
               warmup=0.0, augment=False, train_subset=128, val_subset=64)
    first = Trainer(RunConfig(**cfg, output=str(tmp_path / "a"), sparsity=SparsityConfig(token_keep=0.5)))
    first.fit()
    first.save_checkpoint(tmp_path / "a" / "checkpoint.pt")
    second = Trainer(RunConfig(**cfg, initial_checkpoint=str(tmp_path / "a" / "checkpoint.pt")))
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value), key


def test_bad_initial_checkpoints_are_one_line_errors(tmp_path):
    kw = dict(num_classes=10, img_size=16, in_chans=1, patch_size=4, **TINY)
    with pytest.raises(UserError, match="initial checkpoint not found"):
        build_model("vit_t", initial_checkpoint=str(tmp_path / "nope.pt"), **kw)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read initial checkpoint"):
        build_model("vit_t", initial_checkpoint=str(tmp_path / "junk.pt"), **kw)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "cnn.pt")
    with pytest.raises(UserError, match="holds no ViT weights"):
        build_model("vit_t", initial_checkpoint=str(tmp_path / "cnn.pt"), **kw)
    _, path = _saved(tmp_path)
    with pytest.raises(UserError, match="do not fit .* as configured: .*size mismatch"):
        build_model("vit_t", initial_checkpoint=str(path), **{**kw, "embed_dim": 64})


def test_pretrained_without_the_hub_fails_fast_with_one_line(tmp_path):
    """No cached weights and a hub that cannot be reached: one line, exit 2, no retries for minutes."""
    env = {**os.environ, "HF_ENDPOINT": "https://hub.invalid", "HF_HUB_CACHE": str(tmp_path / "hf")}
    started = time.perf_counter()
    proc = subprocess.run([str(BIN / "trilevel-train"), "--pretrained", "--epochs", "1", "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "--pretrained" in proc.stderr and "not in the local Hugging Face cache" in proc.stderr
    assert time.perf_counter() - started < 60


def test_sparsity_flag_takes_only_the_searched_ratios(tmp_path):
    from trilevel.core.cli import build_parser, resolve_config

    proxy = RunConfig(batch_size=8, lr=1e-2, train_subset=100, sparsity=SparsityConfig(token_keep=0.6, example_keep=0.8))
    (tmp_path / "best.yaml").write_text("# header comments are fine\n" + proxy.to_yaml())
    (tmp_path / "bare.yaml").write_text(SparsityConfig(attention_keep=0.5).to_yaml())
    args = build_parser().parse_args(["--recipe", "deit", "--sparsity", str(tmp_path / "best.yaml"), "--epochs", "300"])
    cfg = resolve_config(args)
    assert cfg.sparsity == proxy.sparsity
    assert (cfg.batch_size, cfg.lr, cfg.train_subset) == (None, None, None)  # the proxy's stay behind
    assert cfg.resolved().batch_size == 256
    bare = resolve_config(build_parser().parse_args(["--sparsity", str(tmp_path / "bare.yaml"), "--token-keep", "0.7"]))
    assert (bare.sparsity.attention_keep, bare.sparsity.token_keep) == (0.5, 0.7)  # flags override the file
    with pytest.raises(UserError, match="sparsity file not found"):
        resolve_config(build_parser().parse_args(["--sparsity", str(tmp_path / "none.yaml")]))
    (tmp_path / "bad.yaml").write_text("sparsity: {token_kep: 0.5}\n")
    with pytest.raises(UserError, match="unknown key 'token_kep'"):
        resolve_config(build_parser().parse_args(["--sparsity", str(tmp_path / "bad.yaml")]))
