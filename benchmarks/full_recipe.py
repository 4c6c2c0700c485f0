"""A searched sparsity under a full training recipe: dense and sparse side by side, same recipe.

What the final command of a search does (`trilevel-train --recipe deit --sparsity best.yaml ...`),
for dense and the sparsity, seeds interleaved (dense s0, sparse s0, dense s1, ...), one process at a
time. Reports training seconds and validation accuracy of each run, the speedup and the paired
accuracy difference. Resumable: finished runs are kept in the output JSON and not re-run.

    python benchmarks/full_recipe.py --dataset folder --data ../shared/data/cifar10 --img-size 32 \
        --train-subset 4000 --val-subset 1000 --epochs 15 --batch-size 128 --recipe deit \
        --keeps 0.896 0.511 0.923 --seeds 1 --out benchmarks/results/full_recipe_cifar.json

`--keeps E T A` is a tri-level search's pick (example, token, attention keep, with the space's fixed
settings); `--sparsity FILE` reads it from a best.yaml instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from trilevel.core import RunConfig, SparsityConfig, train
from trilevel.core.cli import load_sparsity
from trilevel.spaces import load_space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="deit_t")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data")
    p.add_argument("--img-size", type=int)
    p.add_argument("--recipe", default="deit")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--train-subset", type=int)
    p.add_argument("--val-subset", type=int)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--device", default="auto")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--keeps", type=float, nargs=3, metavar=("EXAMPLE", "TOKEN", "ATTENTION"))
    group.add_argument("--sparsity", help="a search's best.yaml (only its sparsity is used)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    if args.keeps:
        sparse = load_space("tri-level").to_sparsity(dict(zip(("example_keep", "token_keep", "attention_keep"),
                                                             args.keeps)))
    else:
        sparse = load_sparsity(args.sparsity)
    base = RunConfig(model=args.model, dataset=args.dataset, data=args.data, img_size=args.img_size,
                     recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                     train_subset=args.train_subset, val_subset=args.val_subset, device=args.device)
    done = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    for seed in range(args.seeds):
        for name, sparsity in (("dense", SparsityConfig()), ("sparse", sparse)):
            if any(r["name"] == name and r["seed"] == seed for r in done):
                continue
            m = train(base.replace(seed=seed, sparsity=sparsity))
            done.append({"name": name, "seed": seed, "status": m["status"], "val_acc": m["val_acc"],
                         "train_seconds": m["train_seconds"], "history_acc": [h["val_acc"] for h in m["history"]],
                         "flops_speedup": m["flops_speedup"], "config": m["config"]})
            print(f"{name} seed {seed}: {100 * m['val_acc']:.2f}% in {m['train_seconds']:.0f}s", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"runs": done}, indent=1) + "\n")
    pairs = [(d, s) for d in done if d["name"] == "dense" for s in done
             if s["name"] == "sparse" and s["seed"] == d["seed"]]
    speedups = [d["train_seconds"] / s["train_seconds"] for d, s in pairs]
    deltas = [100 * (s["val_acc"] - d["val_acc"]) for d, s in pairs]
    summary = {"pairs": len(pairs), "speedup_mean": statistics.mean(speedups),
               "delta_pts_mean": statistics.mean(deltas),
               "delta_pts_sd": statistics.stdev(deltas) if len(deltas) > 1 else None}
    args.out.write_text(json.dumps({"runs": done, "summary": summary}, indent=1) + "\n")
    print(summary)


if __name__ == "__main__":
    main()
