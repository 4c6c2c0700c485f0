"""Each mechanism against a small port, written by us, of its reference computation on fixed tensors.

The ports follow the papers' public code (named in each test); they are deliberately written the
way the reference computes (loops, indices) rather than the way `trilevel.core` does, so a test
fails when our vectorised version drifts from the reference's behaviour.
"""

from __future__ import annotations

import math

import pytest
import torch

from trilevel.core import ExamplePruner, SparsityConfig, keep_at
from trilevel.core.examples import NEVER_LEARNED
from trilevel.core.patch import _connection_mask, _select_tokens, pss_keep_count
from trilevel.core.schedules import epoch_keep_points, mean_keep


# --- Tri-Level: attention connections >= the k-th value ------------------------------------------
def _trilevel_mask_reference(attn: torch.Tensor, keep: float) -> torch.Tensor:
    """Per query row over patch keys: keep every key whose score is >= the row's k-th largest."""
    B, N, _ = attn.shape
    k = math.ceil(keep * (N - 1))
    out = torch.zeros(B, N - 1, N - 1, dtype=torch.bool)
    for b in range(B):
        for q in range(1, N):
            row = attn[b, q, 1:]
            threshold = sorted(row.tolist(), reverse=True)[k - 1]
            out[b, q - 1] = torch.tensor([v >= threshold for v in row.tolist()])
    return out


def test_attention_mask_keeps_ties_at_the_kth_value_as_trilevel():
    torch.manual_seed(0)
    probs = torch.rand(2, 9, 9)
    probs[0, 3, 1:] = 0.0  # a row the previous mask emptied: every key ties at 0
    probs[0, 3, 1:3] = torch.tensor([0.4, 0.3])  # only 2 non-zero keys, k = 4 below
    probs[1, 5, 1:] = 0.25  # a row of exact ties
    mask = _connection_mask(probs, keep=0.5).squeeze(1)  # [B, N, N]
    expected = _trilevel_mask_reference(probs, keep=0.5)
    assert torch.equal(mask[:, 1:, 1:], expected)
    assert mask[0, 3, 1:].all()  # fewer than k non-zero keys: the row stays dense
    assert mask[1, 5, 1:].all()
    assert int(mask[1, 2, 1:].sum()) == 4  # distinct scores: exactly k = ceil(0.5 * 8)
    assert mask[:, 0, :].all() and mask[:, :, 0].all()  # class token row and column kept


def test_attention_mask_fused_token_attends_everything():
    probs = torch.rand(1, 5, 5)
    mask = _connection_mask(probs, keep=0.25, extra=1).squeeze(1)
    assert mask.shape == (1, 6, 6)
    assert mask[:, 5, :].all() and mask[:, :, 5].all()


# --- EViT: the fused token is the attention-weighted *sum* of the dropped tokens -----------------
def _evit_reference(x: torch.Tensor, cls_attn: torch.Tensor, left_tokens: int) -> torch.Tensor:
    """evit.py: topk by class attention, gather the rest, extra = sum(non_topk * non_topk_attn)."""
    B, N, C = x.shape
    _, idx = torch.topk(cls_attn, left_tokens, dim=1, largest=True, sorted=True)
    non_cls = x[:, 1:]
    x_others = torch.gather(non_cls, 1, idx.unsqueeze(-1).expand(-1, -1, C))
    rows = []
    for b in range(B):
        kept = set(idx[b].tolist())
        compl = torch.tensor([i for i in range(N - 1) if i not in kept])
        rows.append(torch.sum(non_cls[b, compl] * cls_attn[b, compl].unsqueeze(-1), dim=0, keepdim=True))
    extra = torch.stack(rows)
    return torch.cat([x[:, 0:1], x_others, extra], dim=1)


def test_evit_fusion_matches_evit_code():
    torch.manual_seed(1)
    x = torch.randn(3, 17, 8)
    cls_attn = torch.softmax(torch.randn(3, 17), dim=-1)  # class token's attention incl. itself
    out, top = _select_tokens(x, cls_attn, keep=0.5, fuse="evit")
    ref = _evit_reference(x, cls_attn[:, 1:], left_tokens=8)
    assert out.shape == ref.shape == (3, 1 + 8 + 1, 8)
    torch.testing.assert_close(out, ref)


def test_normalized_fusion_is_the_weighted_mean():
    torch.manual_seed(2)
    x = torch.randn(2, 9, 4)
    cls_attn = torch.softmax(torch.randn(2, 9), dim=-1)
    evit, top = _select_tokens(x, cls_attn, keep=0.5, fuse="evit")
    mean, _ = _select_tokens(x, cls_attn, keep=0.5, fuse="normalized")
    dropped = torch.ones(2, 8, dtype=torch.bool)
    dropped.scatter_(1, top, False)
    weight_sum = (cls_attn[:, 1:] * dropped).sum(dim=1)
    torch.testing.assert_close(mean[:, -1], evit[:, -1] / weight_sum.unsqueeze(-1))
    torch.testing.assert_close(mean[:, :-1], evit[:, :-1])


@pytest.mark.parametrize("value, mode", [(False, None), ("off", None), (True, "evit"), ("evit", "evit"),
                                         ("normalized", "normalized")])
def test_token_fuse_values(value, mode):
    assert SparsityConfig(token_fuse=value).fuse_mode == mode


# --- PSS: cyclic triangle per epoch, cooldown, drop-ratio rounding, keep count --------------------
def _pss_cyclic_drop(iteration, iterations_per_epoch, total_epochs, cooldown_epochs, start, end):
    """PSS patch_scheduler.py CyclicPatchScheduler.get_patch_drop_ratio (the version with cooldown)."""
    total_iterations = (total_epochs - cooldown_epochs) * iterations_per_epoch
    if iteration > total_iterations - 1:
        return 0.0
    it = iteration % iterations_per_epoch
    if it <= iterations_per_epoch // 2:
        pct = it / (iterations_per_epoch / 2)
    else:
        pct = (iterations_per_epoch - it) / (iterations_per_epoch / 2)
    ratio = (1 - pct) * start + pct * end
    ratio = max(0.0, min(1.0, ratio))
    return round(ratio * 5) / 5


@pytest.mark.parametrize("target", [0.2, 0.35, 0.5])
def test_cyclic_schedule_matches_pss_scheduler(target):
    epochs, cooldown, iters = 10, 2, 40
    cfg = SparsityConfig(token_keep=target, schedule="cyclic", schedule_cooldown=cooldown / epochs,
                         schedule_step=0.2)
    checked = 0
    for it in range(epochs * iters):
        ref_keep = 1.0 - _pss_cyclic_drop(it, iters, epochs, cooldown, start=1.0 - target, end=0.0)
        if _at_rounding_tie(it, iters, epochs, cooldown, 1.0 - target):
            continue  # x.5 exactly: which way it rounds depends on the last bit of a float
        checked += 1
        assert keep_at(cfg, target, it / (epochs * iters), epochs) == pytest.approx(ref_keep, abs=1e-9), it
    assert checked >= 0.9 * epochs * iters


def _at_rounding_tie(it, iters, epochs, cooldown, start) -> bool:
    if it > (epochs - cooldown) * iters - 1:
        return False
    c = it % iters
    pct = c / (iters / 2) if c <= iters // 2 else (iters - c) / (iters / 2)
    scaled = (1 - pct) * start * 5
    return abs(scaled - math.floor(scaled) - 0.5) < 1e-9


def test_cyclic_is_a_triangle_within_each_epoch():
    cfg = SparsityConfig(token_keep=0.2, schedule="cyclic", schedule_cooldown=0.0)
    epochs = 9
    at = lambda epoch_fraction: keep_at(cfg, 0.2, epoch_fraction / epochs, epochs)  # noqa: E731
    assert at(0.0) == pytest.approx(0.2)
    assert at(0.5) == pytest.approx(1.0)  # dense mid-epoch, as PSS (ours used to be 0.33 here)
    assert at(0.25) == pytest.approx(0.6)
    assert at(3.5) == pytest.approx(1.0)
    assert mean_keep(cfg, 0.2, epochs) == pytest.approx(0.6, abs=1e-3)  # (r + 1) / 2


def test_cyclic_epoch_cost_averages_within_the_epoch():
    cfg = SparsityConfig(token_keep=0.2, schedule="cyclic", schedule_cooldown=0.0)
    points = epoch_keep_points(cfg, epoch=2, epochs=9)
    keeps = [keep_at(cfg, 0.2, p, 9) for p in points]
    assert len(points) == 8
    assert sum(keeps) / len(keeps) == pytest.approx(0.6)  # the midpoint alone would say 1.0
    assert len(epoch_keep_points(SparsityConfig(), 2, 9)) == 1


def test_drop_ratio_rounding_goes_pss_way_at_ties():
    # keep 0.5 is drop 0.5: PSS rounds round(0.5 * 5) / 5 = round(2.5) / 5 = 0.4 drop, i.e. keep 0.6
    # (rounding the keep ratio instead would give keep 0.4).
    cfg = SparsityConfig(token_keep=0.5, schedule="constant", schedule_step=0.2)
    assert keep_at(cfg, 0.5, 0.3) == pytest.approx(0.6)


@pytest.mark.parametrize("keep, patches", [(0.2, 16), (0.5, 16), (0.6, 49), (0.35, 196), (0.9, 64)])
def test_input_keep_count_matches_pss(keep, patches):
    n_with_cls = patches + 1
    keep_point = int(round((1 - (1 - keep)) * n_with_cls)) - 1  # pss.py get_random_patches
    assert pss_keep_count(keep, patches) == keep_point


# --- InfoBatch: keep int(r * n_below) of the below-mean examples, weight 1/r, anneal at delta -------
def _infobatch_reference(scores, keep_ratio):
    """infobatch.py InfoBatch.prune, without its random draw: (remained count, weight of a kept
    below-mean example, candidates)."""
    well_learned = [i for i, s in enumerate(scores) if s < sum(scores) / len(scores)]
    selected = int(keep_ratio * len(well_learned))
    return len(scores) - len(well_learned) + selected, 1 / keep_ratio, set(well_learned)


def _infobatch_prunes(epoch, num_epochs, delta=0.875):
    """IBSampler.reset: `iterations` counts epochs from 1; pruning stops once it exceeds delta * E."""
    return epoch + 1 <= num_epochs * delta


@pytest.mark.parametrize("prune_ratio", [0.3, 0.5, 0.95])
def test_infobatch_matches_reference(prune_ratio):
    n, epochs = 300, 9
    torch.manual_seed(0)
    losses = torch.rand(n) ** 3
    cfg = SparsityConfig(example_keep=1 - prune_ratio, example_criterion="loss")
    pruner = ExamplePruner(cfg, n, epochs, seed=4)
    pruner.epoch_plan(0, batch_size=8)
    pruner.record(torch.arange(n), torch.ones(n, dtype=torch.bool), losses)
    pruner.end_epoch(0)
    keep_ratio = min(1.0, max(1e-1, 1.0 - prune_ratio))  # InfoBatch.__init__
    remained, weight, candidates = _infobatch_reference(losses.tolist(), keep_ratio)
    plan = pruner.epoch_plan(1, batch_size=8)
    assert plan.num_active == remained
    skipped = set((~pruner.active).nonzero().squeeze(1).tolist())
    assert skipped <= candidates
    kept_candidates = sorted(candidates - skipped)
    assert torch.allclose(plan.weights[kept_candidates], torch.full((len(kept_candidates),), weight))
    others = sorted(set(range(n)) - candidates)
    assert (plan.weights[others] == 1).all()
    # unbiased: the weights of the kept candidates sum to (about) the candidates they stand for
    assert abs(float(plan.weights[kept_candidates].sum()) - len(candidates)) <= weight
    for epoch in range(1, epochs):
        annealed = pruner.epoch_plan(epoch, batch_size=8)
        assert (annealed.weights is not None) == _infobatch_prunes(epoch, epochs), epoch


# --- Forgetting: statistics over a window that restarts at each swap; >= 2 presentations ------------
def test_forgetting_window_restarts_at_each_swap():
    # 4 examples, 3 active; one swap every 2 epochs. Example 0 forgets in the first window only: at
    # the second swap the reference's window scores it 0 (no forgetting lately), where counts
    # accumulated over the run would still say 1.
    cfg = SparsityConfig(example_keep=0.75, example_interval=0.2, example_swap=0.25, example_max_swaps=2)
    pruner = ExamplePruner(cfg, num_examples=4, epochs=10, seed=0)
    pruner.active[:] = torch.tensor([True, True, True, False])
    used = []
    remove_restore = pruner._remove_restore

    def spy(epoch):
        used.append(pruner.forgetting_scores()[:3].tolist())
        return remove_restore(epoch)

    pruner._remove_restore = spy
    windows = [  # per epoch, correctness of examples 0, 1, 2 (2 is never learned: kept active)
        [1, 1, 0], [0, 1, 0],  # window 1: example 0 forgets
        [1, 1, 0], [1, 0, 0],  # window 2: example 0 does not forget (1 was removed at swap 1)
    ]
    for epoch, row in enumerate(windows):
        idx = pruner.active.nonzero().squeeze(1)
        full = torch.tensor(row + [1], dtype=torch.bool)
        pruner.record(idx, full[idx], torch.zeros(len(idx)))
        pruner.end_epoch(epoch)
    assert used[0] == [1, 0, NEVER_LEARNED]
    assert used[1][0] == 0  # the window restarted at the first swap
    assert pruner.swaps == 2
    assert int(pruner.forgetting.sum()) == 0  # and restarts again after the second swap


def test_short_runs_swap_after_two_presentations():
    cfg = SparsityConfig(example_keep=0.5)  # interval 10% of 9 epochs rounds to 1: raised to 2
    pruner = ExamplePruner(cfg, num_examples=40, epochs=9, seed=1)
    assert pruner.swap_interval() == 2
    swapped_after = []
    for epoch in range(9):
        idx = pruner.active.nonzero().squeeze(1)
        pruner.record(idx, torch.rand(len(idx)) < 0.5, torch.zeros(len(idx)))
        if pruner.end_epoch(epoch).get("swapped"):
            swapped_after.append(epoch + 1)
    assert swapped_after == [2, 4, 6, 8]
    assert round(SparsityConfig().example_swap * 40) == 2  # 5% of the data per swap, as the reference
