"""Named training recipes: the short search proxy and DeiT's long training, kept apart.

A search ranks configurations after a few epochs of training from scratch, often on a small
dataset; a final training runs hundreds of epochs. One recipe cannot serve both: DeiT's recipe
(lr 5e-4 x batch/512, strong augmentation, drop path) barely moves a ViT in a few epochs, and a
recipe tuned to learn fast in a few epochs is not what a 300-epoch DeiT run should use. So a run
config names its recipe (`recipe: proxy | deit | finetune`), or leaves it `auto`: runs of at most
`PROXY_MAX_EPOCHS` epochs use `proxy`, longer ones `deit` (`finetune` when they start from
pretrained weights). The choice depends on the run's length
only, never on the dataset's name. Any recipe field set in the run config (or by a flag) overrides
the recipe's value; fields left unset (None) come from the recipe, so a search's best.yaml trained
with `--epochs 300` gets DeiT's recipe, not the proxy's.

How each proxy value was chosen is in BENCHMARKS.md ("The search proxy"), measured on 3 seeds.
`deit` is DeiT's published recipe and `finetune` timm's fine-tuning conventions; every component
(RandAugment, random erasing, Mixup/CutMix, repeated augmentation, EMA, layer-wise lr decay) is
timm's own, switched on by these values (core/data.py, core/trainer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import UserError, suggest

PROXY_MAX_EPOCHS = 30  # auto: a run this short (or shorter) is a proxy


@dataclass(frozen=True)
class Recipe:
    """Optimisation and regularisation values of one named recipe (every field of `RunConfig`
    that a recipe may fill). The learning rate is `lr` at batch `lr_batch` and is scaled to the
    run's batch size by `lr_scale` (linear as DeiT, or sqrt as timm's default for Adam-family
    optimizers), unless the run sets `lr` itself."""

    batch_size: int
    lr: float
    lr_batch: int
    lr_scale: str  # linear | sqrt
    min_lr: float
    warmup: float  # fraction of training
    weight_decay: float
    label_smoothing: float
    drop_path: float
    augment: bool  # training crops (and flips, except for digits): timm's RandomResizedCrop
    clip_grad: float  # max global gradient norm; 0 = off
    model_ema: float  # decay of an exponential moving average of the weights, evaluated instead; 0 = off
    description: str
    # Timm's train.py names (`--scale`, `--aa`, `--reprob`, `--mixup`, `--cutmix`, `--aug-repeats`,
    # `--layer-decay`); 0 / "none" = off. Only used when `augment` is on (aa, reprob, scale).
    scale: float = 0.35  # smallest crop, as a fraction of the image area (timm's --scale MIN 1.0)
    aa: str = "none"  # timm auto-augment policy, e.g. rand-m9-mstd0.5-inc1 (RandAugment)
    reprob: float = 0.0  # random erasing probability (mode pixel, one box: DeiT's)
    mixup: float = 0.0  # Mixup alpha
    cutmix: float = 0.0  # CutMix alpha (with both on, timm switches per batch with probability 0.5)
    aug_repeats: int = 0  # repeated augmentation copies per image under DDP (timm's RepeatAugSampler)
    layer_decay: float = 0.0  # layer-wise lr decay (timm's param groups); 0 = off

    def lr_for(self, batch_size: int) -> float:
        ratio = batch_size / self.lr_batch
        return self.lr * (ratio if self.lr_scale == "linear" else ratio ** 0.5)


RECIPES: dict[str, Recipe] = {
    # Short runs from scratch: learn fast and the same way on every seed (BENCHMARKS.md).
    "proxy": Recipe(
        batch_size=16, lr=5e-4, lr_batch=16, lr_scale="sqrt", min_lr=1e-5, warmup=0.1, weight_decay=0.05,
        label_smoothing=0.0, drop_path=0.0, augment=False, clip_grad=1.0, model_ema=0.0,
        description="short proxy runs from scratch (<= 30 epochs): no augmentation or regularisation "
                    "that slows early learning, gradient clipping",
    ),
    # DeiT (Touvron et al. 2021, Table 9; facebookresearch/deit main.py defaults): AdamW, lr 5e-4 x
    # batch/512, weight decay 0.05, 5 of 300 epochs warm-up, cosine to 1e-5, label smoothing 0.1,
    # drop path 0.1, RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, Mixup 0.8 + CutMix 1.0,
    # repeated augmentation x3, crops from 8% of the area, EMA off (its --model-ema is optional).
    "deit": Recipe(
        batch_size=256, lr=5e-4, lr_batch=512, lr_scale="linear", min_lr=1e-5, warmup=5 / 300,
        weight_decay=0.05, label_smoothing=0.1, drop_path=0.1, augment=True, clip_grad=0.0, model_ema=0.0,
        scale=0.08, aa="rand-m9-mstd0.5-inc1", reprob=0.25, mixup=0.8, cutmix=1.0, aug_repeats=3,
        description="DeiT's training from scratch (> 30 epochs)",
    ),
    # Fine-tuning pretrained weights (--pretrained / --initial-checkpoint): DeiT's regularisation
    # with the conventions timm carries from BEiT/MAE fine-tuning (`--layer-decay`, AdamW, 5%
    # warm-up): layer-wise lr decay 0.75 (MAE's value for ViT-L, BEiT's for ViT-B; deeper layers
    # move more than the patch embedding) and a base lr 10x below DeiT's from-scratch one, since
    # the weights start near a solution. No repeated augmentation (fine-tuning runs are short).
    # A convention, not a measured optimum for every dataset: set --lr for yours.
    "finetune": Recipe(
        batch_size=256, lr=5e-5, lr_batch=512, lr_scale="linear", min_lr=1e-6, warmup=0.05,
        weight_decay=0.05, label_smoothing=0.1, drop_path=0.1, augment=True, clip_grad=0.0, model_ema=0.0,
        scale=0.08, aa="rand-m9-mstd0.5-inc1", reprob=0.25, mixup=0.8, cutmix=1.0, aug_repeats=0,
        layer_decay=0.75,
        description="fine-tuning pretrained weights: DeiT's regularisation, lr / 10, layer decay 0.75",
    ),
}
RECIPE_FIELDS = tuple(f.name for f in fields(Recipe) if f.name not in ("lr_batch", "lr_scale", "description"))
RECIPE_NAMES = ("auto", *RECIPES)
AUTO_AUGMENT_OFF = "none"


def recipe_name(name: str, epochs: int, pretrained: bool = False) -> str:
    """The concrete recipe for a run: `auto` picks by the run's length, and `finetune` for a long
    run that starts from pretrained weights."""
    if name == "auto":
        if epochs <= PROXY_MAX_EPOCHS:
            return "proxy"
        return "finetune" if pretrained else "deit"
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}{suggest(name, RECIPE_NAMES)}; use {', '.join(RECIPE_NAMES)}")
    return name


def recipe_values(name: str, epochs: int, overrides: dict, pretrained: bool = False) -> tuple[str, dict]:
    """(concrete recipe name, every recipe field's value) with `overrides` (non-None) on top."""
    name = recipe_name(name, epochs, pretrained)
    recipe = RECIPES[name]
    values = {f: getattr(recipe, f) for f in RECIPE_FIELDS}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("lr") is None:
        values["lr"] = recipe.lr_for(values["batch_size"])
    return name, values
