"""Mechanisms of core/: parity with stock timm, token counts, attention masks, schedules, config."""

import copy
import math

import pytest
import torch

from trilevel.core import RunConfig, SparsityConfig, UserError, keep_at, set_keep, sparsify, state_of
from trilevel.core.models import build_model
from trilevel.core.patch import keep_count

TINY = dict(depth=4, embed_dim=48, num_heads=3)


def tiny(depth=4, img=16, **kw):
    torch.manual_seed(0)
    return build_model("vit_t", num_classes=5, img_size=img, patch_size=4, **{**TINY, "depth": depth, **kw})


@pytest.mark.parametrize("train", [False, True])
def test_parity_with_stock_timm_at_keep_one(train):
    stock = build_model("deit_t", num_classes=10, img_size=32, drop_path=0.1)
    patched = sparsify(copy.deepcopy(stock), SparsityConfig())
    x = torch.randn(3, 3, 32, 32)
    stock.train(train)
    patched.train(train)
    torch.manual_seed(1)
    a = patched(x)
    torch.manual_seed(1)
    b = stock(x)
    assert torch.allclose(a, b, atol=1e-5)
    assert type(patched).__name__ == "SparseVisionTransformer"


def test_token_counts_follow_ceil_formula():
    model = sparsify(tiny(depth=12, img=32), SparsityConfig(token_keep=0.7, schedule="constant"))
    model(torch.randn(2, 3, 32, 32))
    n, expected = 64, []
    for _ in range(3):
        n = math.ceil(0.7 * n)
        expected.append(1 + n)
    assert state_of(model).token_counts == expected == [46, 33, 24]
    assert state_of(model).blocks == {3, 6, 9}


def test_fusion_adds_one_token_and_gradients_flow():
    model = sparsify(tiny(depth=12, img=32), SparsityConfig(token_keep=0.5, token_fuse=True))
    out = model(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert state_of(model).token_counts == [1 + 32 + 1, 1 + 17 + 1, 1 + 9 + 1]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_default_blocks_scale_with_depth():
    assert SparsityConfig().pruning_blocks(12) == [3, 6, 9]
    assert SparsityConfig().pruning_blocks(4) == [1, 2, 3]
    assert SparsityConfig(token_blocks=[0, 2]).pruning_blocks(4) == [0, 2]
    with pytest.raises(UserError, match="out of range"):
        SparsityConfig(token_blocks=[5]).pruning_blocks(4)


def test_attention_mask_rows_keep_stated_connections():
    model = sparsify(tiny(depth=4, img=32), SparsityConfig(attention_keep=0.3, token_keep=0.5))
    model(torch.randn(2, 3, 32, 32))
    mask = state_of(model).attn_mask[:, 0]  # built at the last pruning block
    n_patch = mask.shape[-1] - 1
    k = math.ceil(0.3 * n_patch)
    assert mask[:, 0].all() and mask[:, :, 0].all()  # class token row and column
    counts = mask[:, 1:, 1:].sum(-1)
    # k keys per row; a row whose earlier mask left fewer than k non-zero keys ties at 0 and stays
    # dense, as Tri-Level's >= k-th value threshold (tests/test_fidelity.py)
    assert ((counts == k) | (counts == n_patch)).all()
    assert (counts == k).any()


def test_mask_is_applied_in_later_blocks():
    """With a mask, later blocks' outputs differ from the unmasked model (the mask is used)."""
    base = tiny(depth=4, img=16)
    masked = sparsify(copy.deepcopy(base), SparsityConfig(attention_keep=0.2, token_blocks=[0]))
    dense = sparsify(copy.deepcopy(base), SparsityConfig(token_blocks=[0]))
    x = torch.randn(2, 3, 16, 16)
    masked.eval(), dense.eval()
    assert not torch.allclose(masked(x), dense(x))


def test_cls_row_ranking_matches_full_attention():
    model = sparsify(tiny(), SparsityConfig())
    attn = model.blocks[0].attn
    x = torch.randn(2, 17, 48)
    out_a, cls_a, _ = attn.forward_ranked(x, None, need_full=False, cls_grad=False)
    out_b, cls_b, probs = attn.forward_ranked(x, None, need_full=True, cls_grad=False)
    assert torch.allclose(cls_a, cls_b, atol=1e-6)
    assert torch.allclose(out_a, out_b, atol=1e-5)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 17), atol=1e-5)


@pytest.mark.parametrize("need_full", [False, True])
def test_forward_ranked_equals_stock_timm_attention(need_full):
    """Our copy of timm's Attention.forward gives stock timm's output, with and without a mask."""
    from timm.layers import Attention

    model = sparsify(tiny(), SparsityConfig())
    ours = model.blocks[1].attn.eval()
    stock = Attention(48, num_heads=3, qkv_bias=True).eval()
    stock.load_state_dict(ours.state_dict())
    x = torch.randn(2, 17, 48)
    mask = torch.rand(2, 1, 17, 17) > 0.3
    mask[..., 0] = True  # every query keeps the class token, as our masks do
    for attn_mask in (None, mask):
        out, cls_attn, _ = ours.forward_ranked(x, attn_mask, need_full=need_full, cls_grad=False)
        assert torch.allclose(out, stock(x, attn_mask=attn_mask), atol=1e-5)
        q, k, _ = ours.qkv(x).reshape(2, 17, 3, 3, 16).permute(2, 0, 3, 1, 4).unbind(0)
        logits = (q @ k.transpose(-2, -1)) * ours.scale
        if attn_mask is not None:
            logits = logits.masked_fill(~attn_mask, float("-inf"))
        assert torch.allclose(cls_attn, logits.softmax(-1)[:, :, 0].mean(1), atol=1e-6)


@pytest.mark.parametrize("sampling", ["random", "magnitude"])
def test_input_patch_dropping_training_only(sampling):
    model = sparsify(tiny(img=32), SparsityConfig(token_keep=0.5, token_mode="input", token_sampling=sampling))
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert state_of(model).token_counts == [1 + 31]  # PSS: round(0.5 * 65) - 1 = 31 of 64 patches
    model.eval()
    model(torch.randn(2, 3, 32, 32))
    assert state_of(model).token_counts == []


def test_set_keep_moves_ratios():
    model = sparsify(tiny(depth=12, img=32), SparsityConfig(token_keep=0.5))
    set_keep(model, 1.0, 1.0)
    model(torch.randn(1, 3, 32, 32))
    assert state_of(model).token_counts == []


def test_refuses_models_without_class_token():
    with pytest.raises(UserError, match="class token"):
        build_model("vit_t", num_classes=3, img_size=32, global_pool="avg", class_token=False)
    with pytest.raises(UserError, match="unknown model.*deit_t"):
        build_model("deit_tinyy", num_classes=3, img_size=32)
    with pytest.raises(UserError, match="not a timm VisionTransformer"):
        build_model("resnet18", num_classes=3, img_size=32)


def test_keep_count_is_exact_ceil():
    assert keep_count(0.7, 10) == 7
    assert keep_count(0.5, 65) == 33
    assert keep_count(0.01, 10) == 1


# --- schedules -------------------------------------------------------------------------------------
def test_paper_schedule_values():
    cfg = SparsityConfig(token_keep=0.7)  # warmup_cosine: 10/300 at 1.0, cosine over 100/300
    assert keep_at(cfg, 0.7, 0.0) == 1.0
    assert keep_at(cfg, 0.7, 9.9 / 300) == 1.0
    assert keep_at(cfg, 0.7, (10 + 50) / 300) == pytest.approx(0.85)
    assert keep_at(cfg, 0.7, 110 / 300) == pytest.approx(0.7)
    assert keep_at(cfg, 0.7, 1.0) == 0.7


def test_pss_schedules_ramp_up_to_dense():
    lin = SparsityConfig(token_keep=0.2, schedule="linear", schedule_cooldown=0.0)
    assert keep_at(lin, 0.2, 0.0) == pytest.approx(0.2)
    assert keep_at(lin, 0.2, 0.5) == pytest.approx(0.6)
    assert keep_at(lin, 0.2, 1.0) == 1.0
    cooled = SparsityConfig(token_keep=0.2, schedule="linear", schedule_cooldown=0.2)
    assert keep_at(cooled, 0.2, 0.4) == pytest.approx(0.6)  # the ramp ends where the cooldown starts
    assert keep_at(cooled, 0.2, 0.85) == 1.0
    cyc = SparsityConfig(token_keep=0.2, schedule="cyclic", schedule_cycles=2, schedule_step=0.2,
                         schedule_cooldown=0.0)
    assert keep_at(cyc, 0.2, 0.0) == pytest.approx(0.2)
    assert keep_at(cyc, 0.2, 0.125) == pytest.approx(0.6)
    assert keep_at(cyc, 0.2, 0.25) == pytest.approx(1.0)
    assert keep_at(cyc, 0.2, 0.5) == pytest.approx(0.2)
    assert keep_at(SparsityConfig(schedule="cosine", schedule_cooldown=0.0), 0.4, 0.5) == pytest.approx(0.7)
    assert keep_at(SparsityConfig(schedule="constant"), 0.4, 0.0) == 0.4


# --- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, 0.0, 1.5, -0.1, "a"])
def test_ratio_validation(value):
    with pytest.raises(UserError, match="example_keep"):
        SparsityConfig(example_keep=value)


def test_choices_suggest_closest():
    with pytest.raises(UserError, match="did you mean 'forgetting'"):
        SparsityConfig(example_criterion="forgeting")


def test_yaml_round_trip_and_unknown_key():
    cfg = RunConfig(epochs=3, sparsity=SparsityConfig(example_keep=0.6, token_keep=0.8, token_blocks=[1, 2]))
    assert RunConfig.from_yaml(cfg.to_yaml()) == cfg
    assert SparsityConfig.from_yaml(cfg.sparsity.to_yaml()) == cfg.sparsity
    with pytest.raises(UserError, match="unknown key 'token_kep'.*did you mean 'token_keep'"):
        SparsityConfig.from_dict({"token_kep": 0.5})
    with pytest.raises(UserError, match="malformed YAML.*line"):
        RunConfig.from_yaml("model: [deit_t\nepochs: 3")
    with pytest.raises(UserError, match="not divisible"):
        RunConfig(img_size=30, patch_size=4)
    assert SparsityConfig().is_dense
