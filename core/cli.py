"""`trilevel-train`: train one configuration (e.g. the final full training of a search's best.yaml).

    trilevel-train --recipe deit --sparsity runs/NAME/best.yaml --dataset folder --data DIR --epochs 300
    trilevel-train --config runs/NAME/best.yaml --epochs 1     # the proxy run itself, as searched

Flags override the files (`--sparsity` takes only the searched ratios; `--config` a whole run). Writes OUTPUT/metrics.json and OUTPUT/checkpoint.pt (every epoch;
`--resume` continues from it) and prints a short summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .config import (AMP_DTYPES, DEFAULT_EPOCHS, EXAMPLE_CRITERIA, SCHEDULES, TOKEN_FUSES, TOKEN_MODES, TOKEN_SAMPLINGS, RunConfig,
                     SparsityConfig)
from .recipes import PROXY_MAX_EPOCHS, RECIPE_NAMES
from .atomic import ensure_writable
from .errors import UserError
from .metrics import RunMetrics
from .status import COMPLETED

RUN_FLAGS = (  # flags of add_run_flags; each is the RunConfig field of the same name
    "model", "dataset", "data", "epochs", "recipe", "batch_size", "img_size", "patch_size", "lr", "seed",
    "split_seed", "device", "workers", "train_subset", "val_subset", "pretrained", "initial_checkpoint",
    "weight_decay", "label_smoothing", "drop_path", "clip_grad", "model_ema", "layer_decay", "scale", "aa",
    "reprob", "mixup", "cutmix", "aug_repeats", "model_kwargs", "amp_dtype",
)
MODEL_EMA_DECAY = 0.9998  # timm train.py's --model-ema-decay default
SPARSITY_FLAGS = (
    "example_keep", "example_criterion", "token_keep", "token_mode", "token_sampling", "token_fuse",
    "attention_keep", "schedule",
)


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """`--version`: the installed distribution's version (answers without importing torch)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("trilevel-search")
    except PackageNotFoundError:  # running from a source tree that was never installed
        number = "unknown"
    parser.add_argument("--version", action="version", version=f"%(prog)s {number}")


class ParseKwargs(argparse.Action):
    """`--model-kwargs depth=4 embed_dim=64`: timm train.py's syntax (values read as Python literals,
    else kept as strings). Written here because `timm.utils.ParseKwargs` imports torch, and `--help`
    must answer without it."""

    def __call__(self, parser, namespace, values, option_string=None):
        import ast

        kwargs = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                parser.error(f"{option_string} takes key=value pairs, got {item!r}")
            try:
                kwargs[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                kwargs[key] = value
        setattr(namespace, self.dest, kwargs)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit 2 (no usage dump, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_run_flags(parser: argparse.ArgumentParser, epochs_help: str | None = None,
                  epochs_type: Callable[[str], Any] = int) -> None:
    """Model, data and recipe flags shared by trilevel-train and trilevel-search, grouped as in
    timm's train.py so `--help` reads by topic. trilevel-search's `--epochs` also takes `auto`
    (`epochs_type`, `epochs_help`)."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="alias (deit_t, deit_s, deit_b, vit_t, vit_s, vit_b) or timm ViT name")
    model.add_argument("--img-size", type=int, help="input side in px (default: small images at their own size in 4 px steps, >= 16; else 224)")
    model.add_argument("--patch-size", type=int, help="patch side in px (default: 4 at <= 64 px, else the model's)")
    model.add_argument("--model-kwargs", nargs="*", action=ParseKwargs, metavar="KEY=VALUE",
                       help="passed to timm.create_model, e.g. depth=4 embed_dim=64 num_heads=2")
    model.add_argument("--pretrained", action="store_const", const=True,
                       help="start from timm's hub weights for the model (the local Hugging Face cache first)")
    model.add_argument("--initial-checkpoint", metavar="FILE",
                       help="start from a local state dict or trilevel checkpoint.pt (works offline); the head is "
                            "re-initialised for another class count, position embeddings resampled by timm")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="digits (built-in), folder, cifar10, cifar100, mnist, fashion-mnist, synthetic")
    data.add_argument("--data", help="dataset directory on disk (not needed for digits/synthetic)")
    data.add_argument("--split-seed", type=int, help="seed of the validation split and subsets, fixed for "
                                                     "every training seed (default: the training seed)")
    data.add_argument("--train-subset", type=int, help="use this many training images (drawn with the split seed)")
    data.add_argument("--val-subset", type=int, help="use this many validation images (drawn with the split seed)")
    data.add_argument("--workers", type=int, help="data loader worker processes")
    recipe = parser.add_argument_group("training recipe")
    recipe.add_argument("--epochs", type=epochs_type, help=epochs_help or f"training epochs (default {DEFAULT_EPOCHS})")
    recipe.add_argument("--recipe", help=f"training recipe: {', '.join(RECIPE_NAMES)} (default auto: proxy for "
                                         f"<= {PROXY_MAX_EPOCHS} epochs, else deit; finetune from weights)")
    recipe.add_argument("--batch-size", type=int, help="default: the recipe's")
    recipe.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's, scaled to the batch size)")
    recipe.add_argument("--seed", type=int, help="training seed (initialisation, data order, dropout)")
    recipe.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    recipe.add_argument("--amp-dtype", choices=AMP_DTYPES, help="GPU mixed precision (default bfloat16; float32 = off)")
    regular = parser.add_argument_group("recipe overrides (timm train.py names; default: the recipe's, 0 = off)")
    regular.add_argument("--weight-decay", type=float)
    regular.add_argument("--smoothing", dest="label_smoothing", type=float, help="label smoothing")
    regular.add_argument("--drop-path", type=float, help="stochastic depth rate")
    regular.add_argument("--clip-grad", type=float, help="max global gradient norm")
    regular.add_argument("--layer-decay", type=float, help="layer-wise lr decay (e.g. 0.75)")
    regular.add_argument("--model-ema", dest="model_ema", action="store_const", const=MODEL_EMA_DECAY,
                         help=f"validate an EMA of the weights (decay {MODEL_EMA_DECAY})")
    regular.add_argument("--model-ema-decay", dest="model_ema", type=float, help="EMA with this decay")
    regular.add_argument("--scale", type=float, metavar="MIN", help="smallest random crop, fraction of the area")
    regular.add_argument("--aa", metavar="POLICY", help="timm auto-augment policy (rand-m9-mstd0.5-inc1) or none")
    regular.add_argument("--reprob", type=float, help="random erasing probability")
    regular.add_argument("--mixup", type=float, help="Mixup alpha")
    regular.add_argument("--cutmix", type=float, help="CutMix alpha")
    regular.add_argument("--aug-repeats", type=int, help="repeated augmentation copies (under DDP)")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="trilevel-train", description="Train one tri-level sparse ViT configuration.")
    p.add_argument("--config", help="YAML run config (e.g. a search's best.yaml); flags override it")
    p.add_argument("--sparsity", metavar="FILE",
                   help="take only the sparsity from this YAML (a search's best.yaml, or a bare sparsity "
                        "mapping): the searched ratios, without the proxy run they were found on")
    add_version_flag(p)
    add_run_flags(p)
    sparsity = p.add_argument_group("sparsity (or a search's best.yaml via --config)")
    sparsity.add_argument("--example-keep", type=float, help="fraction of training examples per epoch, (0, 1]")
    sparsity.add_argument("--example-criterion", choices=EXAMPLE_CRITERIA)
    sparsity.add_argument("--token-keep", type=float, help="fraction of patch tokens kept, (0, 1]")
    sparsity.add_argument("--token-mode", choices=TOKEN_MODES)
    sparsity.add_argument("--token-sampling", choices=TOKEN_SAMPLINGS)
    sparsity.add_argument("--token-fuse", nargs="?", const="evit", choices=TOKEN_FUSES,
                          help="attentive: fuse dropped tokens into one; evit (the default when given: EViT's "
                               "weighted sum) or normalized (weighted mean)")
    sparsity.add_argument("--no-token-fuse", dest="token_fuse", action="store_const", const=False)
    sparsity.add_argument("--attention-keep", type=float, help="fraction of attention connections per query, (0, 1]")
    sparsity.add_argument("--schedule", choices=SCHEDULES)
    output = p.add_argument_group("output")
    output.add_argument("--output", help="output directory (default runs/train-TIMESTAMP)")
    output.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    output.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """The file's config with the given flags on top."""
    base = RunConfig.load(args.config) if args.config else RunConfig()
    data = base.to_dict()
    if getattr(args, "sparsity", None):
        data["sparsity"] = load_sparsity(args.sparsity).to_dict()
    for name in (*RUN_FLAGS, "output"):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    for name in SPARSITY_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            data["sparsity"][name] = value
    return RunConfig.from_dict(data)


def load_sparsity(path: str) -> SparsityConfig:
    """The `sparsity:` mapping of a run config YAML (best.yaml), or a file that is only that mapping."""
    from .config import safe_yaml

    file = Path(path)
    if not file.is_file():
        raise UserError(f"sparsity file not found: {file}")
    data = safe_yaml(file.read_text(), str(file))
    if isinstance(data, dict) and "sparsity" in data:
        data = data["sparsity"]
    return SparsityConfig.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        print(f"trilevel-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trilevel-train: interrupted; continue with --resume and the same --output", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    if args.resume and config.output is None:
        raise UserError("--resume needs the --output directory of the run to continue")
    if config.output is None:
        config = config.replace(output=f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    out = Path(config.output)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        ensure_writable(out)
    from rich.console import Console  # imported late: `--help` and bad input stay fast

    from .trainer import train

    console = Console(stderr=False, highlight=False)

    def on_epoch(metrics: RunMetrics, trainer) -> None:
        if not args.quiet:
            r = metrics.history[-1]
            ips = f"{r['images_per_second']:.0f} img/s" if r["images_per_second"] else "-"
            console.print(
                f"epoch {r['epoch']}/{config.epochs}  val_acc {100 * r['val_acc']:.2f}%  "
                f"train {r['train_seconds']:.1f}s  {ips}  token {r['token_keep']:.2f}  "
                f"attention {r['attention_keep']:.2f}  examples {r['active_examples']}",
                soft_wrap=True,
            )

    metrics = train(config, callback=on_epoch, resume=args.resume)
    if rank != 0:
        return 0
    _write_json(out / "metrics.json", metrics.to_dict())
    _summary(console, metrics, out)
    if metrics.status != COMPLETED:
        print(f"trilevel-train: error: training {metrics.status}", file=sys.stderr)
        return 3
    return 0


def _write_json(path: Path, data: dict) -> None:
    from .atomic import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2))


def _summary(console, m: RunMetrics, out: Path) -> None:
    from rich.table import Table

    table = Table(title="trilevel-train", show_header=False, box=None)
    acc = f"{100 * m.val_acc:.2f}%" if m.val_acc is not None else "-"
    rows = [
        ("status", m.status), ("val_acc", acc), ("epochs", str(m.epochs)),
        ("recipe", f"{m.config['recipe']} (batch {m.config['batch_size']}, lr {m.config['lr']:g})"),
        ("train seconds", f"{m.train_seconds:.1f}"),
        ("images/s", f"{m.images_per_second:.1f}" if m.images_per_second else "-"),
        ("GFLOPs/image (fwd+bwd)", f"{m.flops_per_image / 1e9:.3f}" if m.flops_per_image else "-"),
        ("peak memory", f"{m.peak_memory_mb:.0f} MiB"), ("metrics", str(out / "metrics.json")),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
