"""Configuration: `SparsityConfig` (the three levels) and `RunConfig` (one training run).

`SparsityConfig` is the single source of truth for what is pruned and how much; the search samples
it, the trainer consumes it, the report exports it. Every duration is a fraction of training, so a
configuration found on a 10-epoch proxy transfers unchanged to a 300-epoch run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError, suggest, suggest_across
from .recipes import AUTO_AUGMENT_OFF, RECIPE_FIELDS, recipe_name, recipe_values

EXAMPLE_CRITERIA = ("forgetting", "loss", "random")
TOKEN_MODES = ("attentive", "input")
TOKEN_SAMPLINGS = ("random", "magnitude")
TOKEN_FUSES = ("off", "evit", "normalized")  # token_fuse may also be false (off) or true (evit)
SCHEDULES = ("constant", "warmup_cosine", "linear", "cosine", "cyclic")
AMP_DTYPES = ("bfloat16", "float16", "float32")


def _check_ratio(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{name} must be a number in (0, 1], got {value!r}")
    value = float(value)
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise UserError(f"{name} must be in (0, 1], got {value}")
    return value


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{name} must be a fraction of training in [0, 1], got {value!r}")
    value = float(value)
    if not (0.0 <= value <= 1.0):
        raise UserError(f"{name} must be a fraction of training in [0, 1], got {value}")
    return value


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}; got {value!r}{suggest(value, choices)}")
    return value


def _from_mapping(cls, data: Any, what: str, elsewhere: dict[str, list[str]] | None = None):
    """Build a dataclass from a mapping, naming any unknown key and the closest valid one, here or
    where it belongs (`elsewhere`: label format -> names, e.g. a run config's `sparsity.` keys)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{what} must be a mapping of keys to values, got {type(data).__name__}")
    valid = [f.name for f in fields(cls)]
    for key in data:
        if key not in valid:
            raise UserError(f"unknown key {key!r} in {what}{suggest_across(key, {'{!r}': valid, **(elsewhere or {})})}")
    return cls(**data)


@dataclass
class SparsityConfig:
    """Keep ratios and mechanisms at the example, token and attention level.

    `SparsityConfig()` is dense: every keep ratio is 1.0 and training is stock timm training.
    """

    # Example level: the fraction of training examples visited per epoch (forgetting, random); for
    # loss, InfoBatch's keep ratio of the below-mean examples (1 - its prune ratio), see core/examples.py.
    example_keep: float = 1.0
    example_criterion: str = "forgetting"  # forgetting (Tri-Level) | loss (InfoBatch) | random
    example_interval: float = 0.1  # forgetting: fraction of training between remove/restore steps (>= 2 epochs)
    example_max_swaps: int = 5  # forgetting: at most this many remove/restore steps
    example_swap: float = 0.05  # forgetting: fraction of the training set exchanged per step (reference: 5%)
    example_anneal: float = 0.125  # loss: final fraction of training with pruning off (InfoBatch's 1 - delta)

    # Token level: the fraction of patch tokens kept at each pruning block (attentive) or at the input.
    token_keep: float = 1.0
    token_mode: str = "attentive"  # attentive (EViT / Tri-Level) | input (PSS / PatchDropout)
    token_blocks: list[int] | None = None  # 0-based; None = 3, 6, 9 of 12 scaled to the depth
    # attentive: fuse the dropped tokens into one extra token. true (= "evit"): EViT's attention-weighted
    # *sum* of the dropped tokens, as its code; "normalized": their weighted mean (ours, an option).
    token_fuse: bool | str = False
    token_sampling: str = "random"  # input: random | magnitude (L1 of the patch embedding, PSS)

    # Attention level: the fraction of connections each query keeps (top-k mask, Tri-Level).
    attention_keep: float = 1.0

    # Schedule of the token and attention keep ratios over training progress p in [0, 1].
    schedule: str = "warmup_cosine"
    schedule_warmup: float = 10 / 300  # warmup_cosine: keep 1.0 for this fraction of training
    schedule_decay: float = 100 / 300  # warmup_cosine: then cosine 1.0 -> keep over this fraction
    schedule_cycles: int | None = None  # cyclic: r -> 1.0 -> r triangles over the run; None = one per epoch (PSS)
    schedule_cooldown: float = 10 / 300  # linear/cosine/cyclic: dense for this final fraction (PSS's cooldown epochs)
    schedule_step: float = 0.0  # round the scheduled drop ratio to multiples of this (PSS: 0.2); 0 = off
    # linear/cosine/cyclic: the drop ratio the schedule moves towards (PSS's end drop ratio). Below 0
    # the interpolation passes 1.0 and is clamped there: the steps around each cyclic triangle's top
    # are dense (PSS's DeiT scripts use -0.1). 0 = the ramp ends exactly at dense.
    schedule_end_drop: float = 0.0

    @property
    def fuse_mode(self) -> str | None:
        """None (no fused token), "evit" or "normalized"."""
        if self.token_fuse is False or self.token_fuse == "off":
            return None
        return "evit" if self.token_fuse is True else self.token_fuse

    def __post_init__(self) -> None:
        self.example_keep = _check_ratio("example_keep", self.example_keep)
        self.token_keep = _check_ratio("token_keep", self.token_keep)
        self.attention_keep = _check_ratio("attention_keep", self.attention_keep)
        _check_choice("example_criterion", self.example_criterion, EXAMPLE_CRITERIA)
        _check_choice("token_mode", self.token_mode, TOKEN_MODES)
        _check_choice("token_sampling", self.token_sampling, TOKEN_SAMPLINGS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        self.example_interval = _check_fraction("example_interval", self.example_interval)
        if self.example_interval == 0.0:
            raise UserError("example_interval must be > 0")
        self.example_swap = _check_fraction("example_swap", self.example_swap)
        self.example_anneal = _check_fraction("example_anneal", self.example_anneal)
        self.schedule_warmup = _check_fraction("schedule_warmup", self.schedule_warmup)
        self.schedule_decay = _check_fraction("schedule_decay", self.schedule_decay)
        self.schedule_step = _check_fraction("schedule_step", self.schedule_step)
        self.schedule_cooldown = _check_fraction("schedule_cooldown", self.schedule_cooldown)
        if isinstance(self.schedule_end_drop, bool) or not isinstance(self.schedule_end_drop, (int, float)) \
                or not -1.0 <= self.schedule_end_drop < 1.0:
            raise UserError(f"schedule_end_drop must be a drop ratio in [-1, 1), got {self.schedule_end_drop!r}")
        self.schedule_end_drop = float(self.schedule_end_drop)
        if self.schedule_cooldown >= 1.0:
            raise UserError("schedule_cooldown must be < 1")
        for name in ("example_max_swaps", "schedule_cycles"):
            value = getattr(self, name)
            if name == "schedule_cycles" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"{name} must be a non-negative integer, got {value!r}")
        if self.schedule_cycles == 0:
            raise UserError("schedule_cycles must be >= 1 (or unset: one per epoch)")
        if not isinstance(self.token_fuse, bool) and self.token_fuse not in TOKEN_FUSES:
            raise UserError(f"token_fuse must be false, true (evit) or normalized, got {self.token_fuse!r}")
        if self.token_blocks is not None:
            if not isinstance(self.token_blocks, (list, tuple)) or not all(
                isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in self.token_blocks
            ):
                raise UserError(f"token_blocks must be a list of block indices >= 0, got {self.token_blocks!r}")
            self.token_blocks = sorted(set(self.token_blocks))

    @property
    def is_dense(self) -> bool:
        return self.example_keep == 1.0 and self.token_keep == 1.0 and self.attention_keep == 1.0

    def pruning_blocks(self, depth: int) -> list[int]:
        """Blocks where tokens are ranked/pruned and attention masks are built.

        Default: the paper's 3, 6, 9 of a 12-block ViT, scaled to `depth`.
        """
        if self.token_blocks is not None:
            bad = [b for b in self.token_blocks if b >= depth]
            if bad:
                raise UserError(f"token_blocks {bad} out of range for a model with {depth} blocks")
            return list(self.token_blocks)
        return sorted({min(depth - 1, max(0, round(b * depth / 12))) for b in (3, 6, 9)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "SparsityConfig":
        run_keys = [f.name for f in fields(RunConfig) if f.name != "sparsity"]
        return _from_mapping(cls, data, "sparsity config", {"{!r} at the top level of the run config": run_keys})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "SparsityConfig":
        return cls.from_dict(safe_yaml(text, "sparsity config"))


DEFAULT_EPOCHS = 9  # trilevel-train and a search trial alike; the tri-level schedule settles at 37%


@dataclass
class RunConfig:
    """One training run: model, data, recipe and sparsity. `trilevel-train --config` reads this.

    The optimisation values (batch size, lr, warm-up, weight decay, label smoothing, drop path,
    augmentation: crops, RandAugment, random erasing, Mixup/CutMix, repeated augmentation; layer
    decay, gradient clipping, EMA) come from a named recipe (`core/recipes.py`): `auto` uses the
    short-proxy recipe for runs of at most 30 epochs and DeiT's for longer ones (`finetune` when the
    run starts from pretrained weights). A value set here
    overrides the recipe's; `resolved()` gives the config with every value filled in, which is what
    the trainer runs and what metrics.json records. `warmup` is a fraction of training like every
    other duration.
    """

    model: str = "deit_t"
    dataset: str = "digits"
    data: str | None = None
    epochs: int = DEFAULT_EPOCHS
    recipe: str = "auto"  # auto | proxy | deit | finetune (core/recipes.py)
    batch_size: int | None = None
    img_size: int | None = None  # None: the dataset's default (see data.default_img_size)
    patch_size: int | None = None  # None: 4 for images <= 64 px, else the model's own (16)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. depth, embed_dim, num_heads
    lr: float | None = None  # None: the recipe's, scaled to the batch size
    min_lr: float | None = None
    weight_decay: float | None = None
    warmup: float | None = None
    label_smoothing: float | None = None
    drop_path: float | None = None
    clip_grad: float | None = None  # max global gradient norm; 0 = no clipping
    # Decay of timm's ModelEmaV3 (with its decay warm-up); validation scores the averaged weights.
    # 0 = off. None: the recipe's.
    model_ema: float | None = None
    seed: int = 0  # training randomness: initialisation, data order, dropout, example pruning
    # Seed of the validation split and any subsets. None (default): the training seed, so each seed
    # of a search is scored on its own held-out images and a pick that holds over seeds holds over
    # validation sets too (dense and sparse runs of one seed still share theirs: pairs stay paired).
    # Set it to fix one split for every seed; measured on digits it did not lower the seed spread
    # (BENCHMARKS.md, "The search proxy").
    split_seed: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # Mixed precision on a GPU (timm's --amp-dtype): bfloat16 (default), float16 (with loss scaling,
    # for GPUs without bf16) or float32 (off). CPU runs in float32 whatever is set.
    amp_dtype: str = "bfloat16"
    workers: int | None = None  # data loader processes; None: automatic (core/trainer.py `loader_workers`)
    # Paired speed (core/paired.py): timed (this run, dense) step pairs per burst, a burst at each new
    # keep and in each of its next epochs up to 3 bursts (2 x 3 = 6 pairs for a settled keep); 0 = off.
    speed_pairs: int = 2
    val_fraction: float = 0.1
    train_subset: int | None = None
    val_subset: int | None = None
    augment: bool | None = None  # training crops/flips
    # Recipe fields under timm train.py's names (None: the recipe's; 0 / "none": off), see core/recipes.py.
    scale: float | None = None  # smallest crop as a fraction of the image area
    aa: str | None = None  # timm auto-augment policy, e.g. rand-m9-mstd0.5-inc1; "none" = off
    reprob: float | None = None  # random erasing probability
    mixup: float | None = None  # Mixup alpha
    cutmix: float | None = None  # CutMix alpha
    aug_repeats: int | None = None  # repeated-augmentation copies under DDP
    layer_decay: float | None = None  # layer-wise lr decay
    # Start from weights: timm's hub weights for the model (`pretrained`), or a local file
    # (`initial_checkpoint`: a timm/torch state dict or a trilevel checkpoint.pt). Either way the head
    # is re-initialised when the class count differs and position embeddings are resampled (timm's
    # own loading) when image or patch size differs.
    pretrained: bool = False
    initial_checkpoint: str | None = None
    output: str | None = None
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)

    def __post_init__(self) -> None:
        if isinstance(self.sparsity, dict):
            self.sparsity = SparsityConfig.from_dict(self.sparsity)
        if not isinstance(self.sparsity, SparsityConfig):
            raise UserError("sparsity must be a mapping of sparsity settings")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs <= 0:
            raise UserError(f"epochs must be a positive integer, got {self.epochs!r}")
        recipe_name(self.recipe, self.epochs)  # a clear error for an unknown name
        if not isinstance(self.pretrained, bool):
            raise UserError(f"pretrained must be true or false, got {self.pretrained!r}")
        if self.pretrained and self.initial_checkpoint:
            raise UserError("pretrained and initial_checkpoint both set: start from one of them")
        if self.initial_checkpoint is not None and not isinstance(self.initial_checkpoint, str):
            raise UserError(f"initial_checkpoint must be a file path, got {self.initial_checkpoint!r}")
        if self.aa is not None and not isinstance(self.aa, str):
            raise UserError(f"aa must be a timm auto-augment policy string or {AUTO_AUGMENT_OFF!r}, got {self.aa!r}")
        for name in ("mixup", "cutmix", "layer_decay"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise UserError(f"{name} must be a non-negative number (0 = off), got {value!r}")
        if self.layer_decay is not None and self.layer_decay > 1:
            raise UserError(f"layer_decay must be at most 1 (1 or 0 = off), got {self.layer_decay}")
        if self.aug_repeats is not None and (isinstance(self.aug_repeats, bool) or not isinstance(self.aug_repeats, int)
                                             or self.aug_repeats < 0):
            raise UserError(f"aug_repeats must be an integer >= 0 (0 or 1 = off), got {self.aug_repeats!r}")
        if self.scale is not None:
            _check_fraction("scale", self.scale)
            if self.scale == 0:
                raise UserError("scale must be > 0 (the smallest crop's fraction of the image area)")
        for name in ("batch_size", "img_size", "patch_size", "train_subset", "val_subset"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if self.img_size is not None and self.patch_size is not None and self.img_size % self.patch_size:
            raise UserError(
                f"image size {self.img_size} is not divisible by patch size {self.patch_size}"
            )
        if self.model_ema is not None and (isinstance(self.model_ema, bool) or not isinstance(self.model_ema, (int, float))
                                           or not 0 <= self.model_ema < 1):
            raise UserError(f"model_ema must be a decay in [0, 1) (0 = off), got {self.model_ema!r}")
        for name in ("lr", "min_lr", "weight_decay", "clip_grad"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (name == "lr" and value == 0):
                raise UserError(f"{name} must be a {'positive' if name == 'lr' else 'non-negative'} number, got {value!r}")
        for name in ("warmup", "label_smoothing", "drop_path", "val_fraction", "reprob"):
            if getattr(self, name) is not None:
                _check_fraction(name, getattr(self, name))
        _check_choice("amp_dtype", self.amp_dtype, AMP_DTYPES)
        if self.augment is not None and not isinstance(self.augment, bool):
            raise UserError(f"augment must be true or false, got {self.augment!r}")
        if not isinstance(self.model_kwargs, dict):
            raise UserError("model_kwargs must be a mapping, e.g. {depth: 4, embed_dim: 64}")
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            if value is None and name == "split_seed":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"{name} must be an integer >= 0, got {value!r}")
        if isinstance(self.speed_pairs, bool) or not isinstance(self.speed_pairs, int) or self.speed_pairs < 0:
            raise UserError(f"speed_pairs must be an integer >= 0 (0 = no paired speed), got {self.speed_pairs!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 0):
            raise UserError(f"workers must be an integer >= 0 (or unset: automatic), got {self.workers!r}")

    @property
    def data_seed(self) -> int:
        """The seed the validation split and subsets are drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def starts_from_weights(self) -> bool:
        return self.pretrained or bool(self.initial_checkpoint)

    @property
    def recipe_fields_unset(self) -> bool:
        return any(getattr(self, f) is None for f in RECIPE_FIELDS)

    def resolved(self) -> "RunConfig":
        """This config with the recipe named concretely and every recipe value filled in."""
        if self.recipe != "auto" and not self.recipe_fields_unset:
            return self
        name, values = recipe_values(self.recipe, self.epochs, {f: getattr(self, f) for f in RECIPE_FIELDS},
                                     pretrained=self.starts_from_weights)
        return dataclasses.replace(self, recipe=name, **values)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["sparsity"] = self.sparsity.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "RunConfig":
        return _from_mapping(cls, data, "run config", {"'sparsity.{}'": [f.name for f in fields(SparsityConfig)]})

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "RunConfig":
        return cls.from_dict(safe_yaml(text, "run config"))

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file not found: {path}")
        return cls.from_yaml(path.read_text())


def safe_yaml(text: str, what: str) -> Any:
    """yaml.safe_load with a one-line UserError naming where the YAML is malformed."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"malformed YAML in {what}{where}: {problem}") from None
