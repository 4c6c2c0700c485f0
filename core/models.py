"""Stock timm ViT/DeiT models by alias or timm name, sized to the dataset's images.

Small images (<= 64 px, e.g. digits, CIFAR, MNIST) train near their own size (core/data.py: digits at
16 px, MNIST at 28, CIFAR at 32) with 4 px patches: 16 to 64 patch tokens plus the class token.
Larger images keep the model's own patch size (16) at 224 px.

Weights come from timm's own loader (`create_model(pretrained=True)` with a `pretrained_cfg_overlay`),
so a checkpoint made for another class count, image size, patch size or channel count is adapted
the way timm adapts its hub weights: the head is dropped and re-initialised, position embeddings
are resampled (`resample_abs_pos_embed`), patch embeddings resized (`resample_patch_embed`) and a
3-channel stem summed for 1-channel input (`adapt_input_conv`), all in `vision_transformer`'s
`checkpoint_filter_fn` and `load_pretrained`.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

from .errors import UserError, suggest

ALIASES = {
    "deit_t": "deit_tiny_patch16_224",
    "deit_s": "deit_small_patch16_224",
    "deit_b": "deit_base_patch16_224",
    "vit_t": "vit_tiny_patch16_224",
    "vit_s": "vit_small_patch16_224",
    "vit_b": "vit_base_patch16_224",
}
SMALL_IMAGE_PATCH = 4
VIT_MODULES = ["vision_transformer", "deit"]  # timm modules whose models are VisionTransformers


def resolve_name(model: str) -> str:
    """timm model name for an alias or timm name; a clear error listing the aliases otherwise."""
    name = ALIASES.get(model, model)
    if name not in timm.list_models():
        candidates = list(ALIASES) + timm.list_models(module=VIT_MODULES)
        raise UserError(
            f"unknown model {model!r}{suggest(model, candidates)}; "
            f"use an alias ({', '.join(ALIASES)}) or a timm ViT/DeiT name"
        )
    if name not in timm.list_models(module=VIT_MODULES):
        raise UserError(f"{model} is not a timm VisionTransformer (ViT/DeiT family); it cannot be sparsified")
    return name


def default_patch_size(img_size: int) -> int | None:
    """4 px patches for small images; None keeps the model's own patch size."""
    return SMALL_IMAGE_PATCH if img_size <= 64 else None


def build_model(
    model: str,
    *,
    num_classes: int,
    img_size: int,
    in_chans: int = 3,
    patch_size: int | None = None,
    drop_path: float = 0.0,
    pretrained: bool = False,
    initial_checkpoint: str | None = None,
    **model_kwargs,
) -> VisionTransformer:
    """A stock timm ViT: freshly initialised, or from timm's hub weights (`pretrained`, read from the
    local Hugging Face cache when there, else downloaded) or a local file (`initial_checkpoint`)."""
    name = resolve_name(model)
    if patch_size is None:
        patch_size = default_patch_size(img_size)
    if name not in timm.list_models(module=VIT_MODULES):
        raise UserError(f"{model} is not a timm VisionTransformer (ViT/DeiT family); it cannot be sparsified")
    kwargs = dict(num_classes=num_classes, img_size=img_size, in_chans=in_chans, drop_path_rate=drop_path)
    if patch_size is not None:
        if img_size % patch_size:
            raise UserError(f"image size {img_size} is not divisible by patch size {patch_size}")
        kwargs["patch_size"] = patch_size
    kwargs.update(model_kwargs)
    overlay = None
    if initial_checkpoint:
        overlay = _checkpoint_overlay(initial_checkpoint)
    elif pretrained:
        overlay = _hub_overlay(name)
    try:
        net = timm.create_model(name, pretrained=overlay is not None or pretrained, pretrained_cfg_overlay=overlay,
                                **kwargs)
    except (TypeError, AssertionError, ValueError) as exc:
        raise UserError(f"cannot build {name} with {kwargs}: {exc}") from None
    except RuntimeError as exc:  # load_state_dict: the weights are for another architecture
        where = f"the weights in {initial_checkpoint}" if initial_checkpoint else "the pretrained weights"
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:2])
        raise UserError(f"{where} do not fit {name} as configured: {detail}") from None
    check_supported(net, name)
    return net


def check_supported(net: nn.Module, name: str = "model") -> None:
    """Only timm VisionTransformers with a class token and standard blocks can be sparsified."""
    if not isinstance(net, VisionTransformer):
        raise UserError(f"{name} is not a timm VisionTransformer (ViT/DeiT family); it cannot be sparsified")
    if net.cls_token is None or net.global_pool != "token":
        raise UserError(f"{name} has no class token pooling; token ranking needs a ViT/DeiT with a class token")
    if getattr(net, "reg_token", None) is not None or getattr(net, "dist_token", None) is not None:
        raise UserError(f"{name} has register/distillation tokens; only plain ViT/DeiT with one class token is supported")


HUB_TIMEOUT_S = 5.0  # a hub that does not answer in this long counts as unreachable


def _checkpoint_overlay(path: str) -> dict:
    """timm's pretrained config pointing at a local state dict, with the class count and channels
    the file really has (so timm drops the head only when the run's class count differs)."""
    from timm.models import load_state_dict

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"initial checkpoint not found: {file}")
    try:
        # timm's reader: unwraps {"state_dict_ema" | "model_ema" | "state_dict" | "model": ...}
        # (a trilevel checkpoint.pt keeps its weights under "model"), strips DDP's "module."
        state = load_state_dict(str(file), use_ema=False, weights_only=True)
    except Exception as exc:  # a truncated, foreign or pickled-object file
        raise UserError(f"cannot read initial checkpoint {file}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'not a state dict'}") from None
    head, stem = state.get("head.weight"), state.get("patch_embed.proj.weight")
    if stem is None:
        raise UserError(f"initial checkpoint {file} holds no ViT weights (no patch_embed.proj.weight)")
    overlay = dict(state_dict=state, input_size=(int(stem.shape[1]), 224, 224))
    if head is not None:
        overlay["num_classes"] = int(head.shape[0])
    return overlay


def _hub_overlay(name: str) -> dict | None:
    """The cached hub file of `name`'s default weights as a file overlay; None (timm downloads) when
    not cached and the hub answers; a one-line error when neither, instead of ~45 s of retries."""
    from huggingface_hub import constants, try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        raise UserError(f"timm has no pretrained weights for {name}; use --initial-checkpoint FILE")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(hub_id, filename)
        if isinstance(cached, str):
            return dict(file=cached)
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=HUB_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(f"--pretrained: {hub_id} is not in the local Hugging Face cache and {host} cannot be "
                        f"reached ({exc.strerror or exc}); download it where there is a network, or pass "
                        f"the file with --initial-checkpoint") from None
    return None
