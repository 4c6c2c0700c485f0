"""Patch a stock timm VisionTransformer in place for token- and attention-level sparsity.

In the style of ToMe's `tome/patch/timm.py`: the model, its blocks and their attention modules get
subclasses of their own classes (`__class__` swap), and one shared `TrilevelState` carries the
current keep ratios and the per-forward attention mask between blocks. No ViT code is forked: a
block with nothing to do calls the stock timm forward, so at keep 1.0 outputs are the stock ones.

- token level, `attentive`: at each pruning block, after its attention, keep the top ceil(r * N)
  patch tokens ranked by the class token's attention (mean over heads); the MLP of that block and
  every later block see only the kept tokens. Optional EViT fusion of the dropped tokens into one
  (EViT's weighted sum, or a weighted mean as an option).
  The class-token attention row is computed on its own (O(N d)) so the fused SDPA kernel stays in
  use for the block's output whenever no attention mask has to be built.
- token level, `input` (PSS / PatchDropout): drop patch tokens right after the position embedding,
  in timm's own `patch_drop` slot, at random or by L1 magnitude. Training only.
- attention level: at each pruning block, from the head-averaged attention map of the kept tokens,
  each patch query keeps the patch keys scoring >= its ceil(a * n)-th largest (ties kept, as
  Tri-Level's code; class token row and column always kept);
  the later blocks apply this boolean mask in SDPA (masked exponentials are zeroed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer

from .config import SparsityConfig
from .errors import UserError
from .models import check_supported


@dataclass
class TrilevelState:
    """Shared by the patched model and its blocks (ToMe's `_tome_info` idea)."""

    config: SparsityConfig
    blocks: frozenset[int]
    token_keep: float = 1.0
    attention_keep: float = 1.0
    attn_mask: torch.Tensor | None = None  # [B, 1, N, N] bool, True = attend; reset every forward
    token_counts: list[int] = field(default_factory=list)  # tokens (incl. class) after each pruning block

    @property
    def prunes_tokens(self) -> bool:
        return self.config.token_mode == "attentive" and self.token_keep < 1.0

    @property
    def masks_attention(self) -> bool:
        return self.attention_keep < 1.0


def keep_count(keep: float, n: int) -> int:
    """ceil(keep * n), at least 1; guards against 0.7 * 10 = 7.000000000000001."""
    return max(1, min(n, math.ceil(round(keep * n, 6))))


class SparseAttention(Attention):
    """timm Attention that can also return the class-token row and, when needed, the full map."""

    def forward_ranked(self, x, attn_mask, need_full: bool, cls_grad: bool):
        """Stock `forward` plus the class token's attention row (and the full map when asked).

        Copied host code: the body follows timm 1.0.31 `timm/layers/attention.py`, `Attention.forward`
        (qkv, q/k norm, scaled dot-product attention, norm, gate, proj), with two changes: the class
        row is computed beside it, and a boolean `attn_mask` is applied with masked_fill before the
        softmax (timm's non-fused path adds a float bias instead; the result is the same).
        `tests/test_core.py::test_forward_ranked_equals_stock_timm_attention` checks it against the
        installed timm on the same weights and inputs, so a timm change that breaks it fails there.
        """
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        probs = None
        if need_full:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if attn_mask is not None:
                attn = attn.masked_fill(~attn_mask, float("-inf"))
            attn = attn.softmax(dim=-1)
            probs = attn.detach().mean(dim=1)  # [B, N, N], head-averaged, for the connection mask
            cls_attn = attn[:, :, 0].mean(dim=1) if cls_grad else probs[:, 0]
            out = self.attn_drop(attn) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop.p if self.training else 0.0
            )
            with torch.set_grad_enabled(cls_grad and torch.is_grad_enabled()):
                logits = (q[:, :, :1] * self.scale) @ k.transpose(-2, -1)  # [B, H, 1, N]: O(N d)
                if attn_mask is not None:
                    logits = logits.masked_fill(~attn_mask[:, :, :1], float("-inf"))
                cls_attn = logits.softmax(dim=-1).mean(dim=1)[:, 0]  # [B, N]
        out = out.transpose(1, 2).reshape(B, N, self.attn_dim)
        out = self.norm(out)
        gate = getattr(self, "gate", None)
        if gate is not None:
            out = out * gate(x).sigmoid()
        return self.proj_drop(self.proj(out)), cls_attn, probs


class SparseBlock(Block):
    """timm Block that prunes tokens / builds the attention mask at pruning blocks and applies
    the mask elsewhere. With nothing to do it is exactly the stock Block."""

    _trilevel: TrilevelState
    _trilevel_index: int

    def forward(self, x, attn_mask=None, is_causal=False):
        state = self._trilevel
        if attn_mask is None and not is_causal:
            attn_mask = state.attn_mask
        at_pruning_block = self._trilevel_index in state.blocks
        if not at_pruning_block or not (state.prunes_tokens or state.masks_attention):
            return super().forward(x, attn_mask=attn_mask, is_causal=is_causal)

        fuse = state.config.fuse_mode if state.prunes_tokens else None
        attn_out, cls_attn, probs = self.attn.forward_ranked(
            self.norm1(x), attn_mask, need_full=state.masks_attention, cls_grad=fuse is not None
        )
        x = x + self.drop_path1(self.ls1(attn_out))
        extra = 0
        if state.prunes_tokens:
            x, kept = _select_tokens(x, cls_attn, state.token_keep, fuse)
            extra = x.shape[1] - 1 - kept.shape[1]  # 1 when a fused token was appended
            if probs is not None:
                probs = _sub_map(probs, kept)
        if state.masks_attention:
            state.attn_mask = _connection_mask(probs, state.attention_keep, extra)
        elif state.prunes_tokens:
            state.attn_mask = None
        state.token_counts.append(x.shape[1])
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def _select_tokens(x, cls_attn, keep: float, fuse: str | None):
    """Keep the class token and the top-k patch tokens by class attention; optionally fuse the rest.

    `fuse="evit"` appends EViT's extra token, the dropped tokens summed with their class-attention
    weights (evit.py: `torch.sum(non_topk * non_topk_attn.unsqueeze(-1), dim=1)`, not normalised);
    `"normalized"` divides that sum by the weights' sum (a weighted mean, on the tokens' own scale).
    """
    B, N, C = x.shape
    scores = cls_attn[:, 1:]
    k = keep_count(keep, N - 1)
    top = scores.detach().topk(k, dim=1).indices  # [B, k], into patch tokens
    kept_x = x[:, 1:].gather(1, top.unsqueeze(-1).expand(-1, -1, C))
    parts = [x[:, :1], kept_x]
    if fuse and k < N - 1:
        dropped = torch.ones(B, N - 1, dtype=torch.bool, device=x.device)
        dropped.scatter_(1, top, False)
        weights = scores * dropped
        if fuse == "normalized":
            weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        parts.append((weights.unsqueeze(-1) * x[:, 1:]).sum(dim=1, keepdim=True))
    return torch.cat(parts, dim=1), top


def _sub_map(probs, top):
    """The attention map restricted to the kept tokens (class token first), for the mask."""
    B, N, _ = probs.shape
    index = torch.cat([torch.zeros_like(top[:, :1]), top + 1], dim=1)  # [B, 1 + k]
    rows = probs.gather(1, index.unsqueeze(-1).expand(-1, -1, N))
    return rows.gather(2, index.unsqueeze(1).expand(-1, index.shape[1], -1))


def _connection_mask(probs, keep: float, extra: int = 0):
    """Per patch query, every patch key scoring >= its k-th largest, k = ceil(keep * n); class token
    row and column kept.

    As Tri-Level's reference (a threshold at the k-th value, not exactly k indices): ties at the
    k-th value are all kept, so a row whose earlier mask left fewer than k keys with non-zero
    attention keeps every key rather than k arbitrary zero-attention ones.
    `extra` trailing tokens (an EViT fused token) have no attention map yet: they attend to and are
    attended by every token.
    """
    B, N, _ = probs.shape
    k = keep_count(keep, N - 1)
    patch = probs[:, 1:, 1:]
    kth = patch.topk(k, dim=-1).values[..., -1:]  # [B, N-1, 1]
    mask = torch.zeros(B, N + extra, N + extra, dtype=torch.bool, device=probs.device)
    mask[:, 1:N, 1:N] = patch >= kth
    mask[:, 0, :] = True
    mask[:, :, 0] = True
    mask[:, N:, :] = True
    mask[:, :, N:] = True
    return mask.unsqueeze(1)


def pss_keep_count(keep: float, n: int) -> int:
    """Patch tokens PSS keeps of `n` at keep ratio `keep`: `int(round((1 - drop) * N)) - 1` with N
    counting the class token (deit/pss.py `get_random_patches`; Python's round, half to even), at
    least 1."""
    drop = 1.0 - keep  # PSS schedules the drop ratio; computed from it to round the same way
    return max(1, min(n, int(round((1 - drop) * (n + 1))) - 1))


class InputPatchDrop(nn.Module):
    """PSS / PatchDropout: keep PSS's count of patch tokens after the position embedding (training
    only; see `pss_keep_count`).

    Hand-written rather than timm's `patch_dropout_forward` because that floors the count and has no
    magnitude ranking; the class token is always kept.
    """

    def __init__(self, state: TrilevelState, inner: nn.Module):
        super().__init__()
        self.state = state
        self.inner = inner  # the model's original patch_drop (Identity for stock models)

    def forward(self, x):
        x = self.inner(x)
        state = self.state
        if not self.training or state.config.token_mode != "input" or state.token_keep >= 1.0:
            return x
        B, N, C = x.shape
        k = pss_keep_count(state.token_keep, N - 1)
        if state.config.token_sampling == "magnitude":
            scores = x[:, 1:].detach().abs().sum(dim=-1)  # L1 norm of each embedded patch
        else:
            scores = torch.rand(B, N - 1, device=x.device)
        top = scores.topk(k, dim=1).indices
        kept = x[:, 1:].gather(1, top.unsqueeze(-1).expand(-1, -1, C))
        state.token_counts.append(k + 1)
        return torch.cat([x[:, :1], kept], dim=1)


class SparseVisionTransformer(VisionTransformer):
    """Resets the per-forward state; everything else is the stock timm model."""

    _trilevel: TrilevelState

    def forward_features(self, x, attn_mask=None, is_causal=False):
        self._trilevel.attn_mask = None
        self._trilevel.token_counts = []
        return super().forward_features(x, attn_mask=attn_mask, is_causal=is_causal)

    def forward_intermediates(self, *args, **kwargs):
        self._trilevel.attn_mask = None
        self._trilevel.token_counts = []
        return super().forward_intermediates(*args, **kwargs)


def _model_class(base: type) -> type:
    """SparseVisionTransformer's forward on top of the model's own class (may be a timm subclass)."""
    if issubclass(base, SparseVisionTransformer):
        return base
    if base is VisionTransformer:
        return SparseVisionTransformer
    return type(f"Sparse{base.__name__}", (SparseVisionTransformer, base), {})


def sparsify(model: nn.Module, config: SparsityConfig) -> nn.Module:
    """Patch a stock timm ViT/DeiT in place for `config`; returns the same model.

    Keep ratios start at their targets; the trainer moves them along the schedule with `set_keep`.
    """
    check_supported(model, type(model).__name__)
    for block in model.blocks:
        if type(block) not in (Block, SparseBlock) or type(block.attn) not in (Attention, SparseAttention):
            raise UserError(f"sparsify supports timm's standard Block/Attention only, got {type(block).__name__}")
    state = TrilevelState(config=config, blocks=frozenset(config.pruning_blocks(len(model.blocks))))
    model.__class__ = _model_class(type(model))
    model._trilevel = state
    for index, block in enumerate(model.blocks):
        block.__class__ = SparseBlock
        block.attn.__class__ = SparseAttention
        block._trilevel = state
        block._trilevel_index = index
    inner = model.patch_drop.inner if isinstance(model.patch_drop, InputPatchDrop) else model.patch_drop
    model.patch_drop = InputPatchDrop(state, inner)
    set_keep(model, config.token_keep, config.attention_keep)
    return model


def state_of(model: nn.Module) -> TrilevelState:
    """The shared state of a sparsified model (unwraps DDP / torch.compile wrappers)."""
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)
    state = getattr(inner, "_trilevel", None)
    if state is None:
        raise ValueError("model is not sparsified; call trilevel.core.sparsify(model, config) first")
    return state


def set_keep(model: nn.Module, token_keep: float, attention_keep: float) -> None:
    """Set the current token and attention keep ratios (the schedule moves them during training)."""
    state = state_of(model)
    state.token_keep = float(token_keep)
    state.attention_keep = float(attention_keep)
