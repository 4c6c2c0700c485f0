"""Stock timm ViT/DeiT models by alias or timm name, sized to the dataset's images.

Small images (<= 64 px, e.g. digits, CIFAR, MNIST) train near their own size (core/data.py: digits at
16 px, MNIST at 28, CIFAR at 32) with 4 px patches: 16 to 64 patch tokens plus the class token.
Larger images keep the model's own patch size (16) at 224 px.
"""

from __future__ import annotations

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
    **model_kwargs,
) -> VisionTransformer:
    """A freshly initialised stock timm ViT (no weights are downloaded)."""
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
    try:
        net = timm.create_model(name, pretrained=False, **kwargs)
    except (TypeError, AssertionError, ValueError) as exc:
        raise UserError(f"cannot build {name} with {kwargs}: {exc}") from None
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
