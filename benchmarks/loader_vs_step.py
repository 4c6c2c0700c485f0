"""Loader or step: which one bounds training? Input-pipeline images/s against training-step images/s.

A measured speedup must be the model's, not the loader's: if decoding and augmenting images is
slower than the step, a sparse step that is 2x faster trains no faster. Measured side by side in one
process with the trainer's own objects (its DataLoader with the run's workers, its `train_step`):

* loader: images/s of the training DataLoader alone (decode, crops, RandAugment, random erasing),
  for each `--workers` count, after two warm-up batches;
* step: images/s of `Trainer.train_step` alone (Mixup/CutMix, forward, backward, AdamW) on batches
  already in memory, dense and at the sparse setting (`--token-keep`, constant schedule);
* epoch: images/s of whole training epochs (loader and step together) at each workers count.

    python benchmarks/loader_vs_step.py --dataset folder --data ../shared/data/cifar10 \
        --train-subset 2048 --out benchmarks/results/loader_vs_step_cpu.json

The recipe is `deit` (its full augmentation: the heaviest input pipeline the tool runs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import torch

from trilevel.core import RunConfig, SparsityConfig, Trainer
from trilevel.core.trainer import _sync


def _config(args, workers: int, token_keep: float = 1.0) -> RunConfig:
    sparsity = SparsityConfig(token_keep=token_keep, schedule="constant") if token_keep < 1 else SparsityConfig()
    return RunConfig(model=args.model, dataset=args.dataset, data=args.data, recipe="deit", epochs=300,
                     batch_size=args.batch_size, train_subset=args.train_subset, val_subset=args.batch_size,
                     device=args.device, workers=workers, sparsity=sparsity)


def loader_rate(trainer: Trainer, batches: int) -> float:
    """Images/s of the trainer's training DataLoader alone over `batches` batches (after 2)."""
    plan = trainer.pruner.epoch_plan(0, trainer.config.batch_size, 0, 1)
    trainer._plan.batches = plan.batches
    loader = trainer._loader(trainer_indexed(trainer), batch_sampler=trainer._plan)
    count, start = 0, None
    for i, (x, _, _) in enumerate(itertools.islice(loader, batches + 2)):
        if i == 2:
            start = time.perf_counter()
        elif i > 2:
            count += len(x)
    return count / (time.perf_counter() - start)


def trainer_indexed(trainer: Trainer):
    from trilevel.core.trainer import _Indexed

    return _Indexed(trainer.train_set)


def step_rate(trainer: Trainer, batches: list, repeats: int) -> float:
    """Images/s of `train_step` alone over in-memory batches (the first two steps not timed)."""
    trainer.net.train()
    for x, y, idx in batches[:2]:
        trainer.train_step(x, y, idx, 0.5)
    _sync(trainer.device)
    start, count = time.perf_counter(), 0
    for _ in range(repeats):
        for x, y, idx in batches[2:]:
            trainer.train_step(x, y, idx, 0.5)
            count += len(x)
    _sync(trainer.device)
    return count / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="deit_t")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-subset", type=int, default=1024)
    p.add_argument("--batches", type=int, default=12, help="batches timed per loader measurement")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--token-keep", type=float, default=0.5, help="the sparse setting's token keep")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    rows: dict = {"loader": {}, "epoch": {}, "step": {}}
    for w in args.workers:
        trainer = Trainer(_config(args, w))
        rows["loader"][w] = loader_rate(trainer, args.batches)
        rows["epoch"][w] = trainer.train_epoch(0)["images_per_second"]
        print(f"workers {w}: loader {rows['loader'][w]:.0f} img/s, whole epoch {rows['epoch'][w]:.0f} img/s", flush=True)
    dense = Trainer(_config(args, 0))
    plan = dense.pruner.epoch_plan(0, args.batch_size, 0, 1)
    dense._plan.batches = plan.batches[: args.batches + 2]
    batches = list(dense._loader(trainer_indexed(dense), batch_sampler=dense._plan))
    for name, keep in (("dense", 1.0), (f"token_keep {args.token_keep}", args.token_keep)):
        trainer = dense if keep == 1.0 else Trainer(_config(args, 0, keep))
        rows["step"][name] = step_rate(trainer, batches, repeats=1)
        print(f"step {name}: {rows['step'][name]:.0f} img/s", flush=True)
    fastest_step = max(rows["step"].values())
    best_loader = max(rows["loader"].values())
    payload = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__, "device": str(dense.device),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "date": time.strftime("%Y-%m-%d"),
        "images_per_second": rows,
        "loader_over_fastest_step": best_loader / fastest_step,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    verdict = "the step bounds training" if best_loader > fastest_step else "the LOADER bounds training"
    print(f"best loader {best_loader:.0f} img/s vs fastest step {fastest_step:.0f} img/s: {verdict}")


if __name__ == "__main__":
    main()
