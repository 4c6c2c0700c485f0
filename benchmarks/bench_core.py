"""Training speed of each sparsity level vs dense, measured side by side in one process.

For every configuration a real `Trainer` (stock timm model patched in place, synthetic data, the
same recipe) trains whole epochs; configurations are interleaved round-robin and the median epoch
time is kept, so machine noise hits all of them alike. Each measured speedup stands beside the
speedup predicted from FLOPs (`torch.utils.flop_counter` on a real forward + backward).

Also: activation memory held for backward (bytes of tensors autograd saves, any device) or peak
CUDA memory, and the example-level bookkeeping time as a share of the step time.

    python benchmarks/bench_core.py                       # deit_t 32 px / patch 4 on CPU
    python benchmarks/bench_core.py --img-size 224 --device cuda --images 8192 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from trilevel.core import RunConfig, SparsityConfig, Trainer
from trilevel.core.patch import set_keep

CONFIGS = {
    "dense": {},
    "token 0.7 @3/6/9": {"token_keep": 0.7},
    "input 0.5": {"token_keep": 0.5, "token_mode": "input"},
    "attention 0.5": {"attention_keep": 0.5},
    "example 0.7": {"example_keep": 0.7},
    "example 0.7 + token 0.7": {"example_keep": 0.7, "token_keep": 0.7},
    "all three (0.7/0.7/0.5)": {"example_keep": 0.7, "token_keep": 0.7, "attention_keep": 0.5},
    "token 0.7 + EViT fusion": {"token_keep": 0.7, "token_fuse": True},
    "InfoBatch r=0.5": {"example_keep": 0.5, "example_criterion": "loss"},
}


def activation_mb(trainer: Trainer, batch: int) -> float:
    """MiB of tensors autograd saves for backward in one training step (device independent)."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    model = trainer.flop_model
    set_keep(model, *trainer.keeps(0.5))
    model.train()
    x = torch.randn(batch, trainer.info.in_chans, trainer.img_size, trainer.img_size, device=trainer.device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return total / 2**20


def bookkeeping_share(trainer: Trainer, batch: int, step_seconds: float, steps: int) -> float:
    """Time of the per-example statistics (record per step + end of epoch) / time of the steps."""
    pruner = trainer.pruner
    n = len(trainer.train_set)
    idx = torch.randperm(n, device=trainer.device)[: batch * steps].view(steps, batch)
    correct = torch.ones(batch, dtype=torch.bool, device=trainer.device)
    loss = torch.rand(batch, device=trainer.device)
    start = time.perf_counter()
    for _ in range(5):
        for s in range(steps):
            pruner.record(idx[s], correct, loss)
        pruner.end_epoch(0)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / 5 / (steps * step_seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="deit_t")
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--images", type=int, default=1280, help="synthetic training images per epoch (dense)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    trainers = {}
    for name, sparsity in CONFIGS.items():
        cfg = RunConfig(
            model=args.model, dataset="synthetic", img_size=args.img_size, epochs=1000,
            batch_size=args.batch_size, train_subset=args.images, val_subset=64, device=args.device,
            sparsity=SparsityConfig(schedule="constant", **sparsity),
        )
        trainers[name] = Trainer(cfg)
    seconds = {name: [] for name in CONFIGS}
    images = {}
    for r in range(args.rounds + 1):  # round 0 warms up every model
        for name, trainer in trainers.items():
            record = trainer.train_epoch(r)
            if r > 0:
                seconds[name].append(record["train_seconds"])
            images[name] = record["images"]
    dense_name = "dense"
    dense_time = statistics.median(seconds[dense_name])
    dense = trainers[dense_name]
    dense_flops = images[dense_name] * dense.flops_per_image(1.0, 1.0)
    rows = []
    for name, trainer in trainers.items():
        t = statistics.median(seconds[name])
        flops = images[name] * trainer.flops_per_image(*trainer.keeps(0.5))
        steps = max(1, images[name] // args.batch_size)
        measured, predicted = dense_time / t, dense_flops / flops
        rows.append({
            "config": name, "epoch_seconds": t, "images": images[name],
            "images_per_second": images[name] / t, "measured_speedup": measured,
            "flops_speedup": predicted, "measured_over_predicted": measured / predicted,
            "activation_mib": activation_mb(trainer, args.batch_size),
            "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else None,
            "bookkeeping_share": bookkeeping_share(trainer, args.batch_size, t / steps, steps)
            if trainer.pruner.enabled else None,
        })
    device = dense.device
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"{args.model} {args.img_size}px, batch {args.batch_size}, {args.images} synthetic images/epoch, "
          f"median of {args.rounds} interleaved epochs; {machine}; torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    print("| configuration | epoch s | img/s | measured speedup | FLOPs speedup | measured/predicted | activations MiB | bookkeeping |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        book = f"{100 * r['bookkeeping_share']:.3f}%" if r["bookkeeping_share"] is not None else "-"
        print(f"| {r['config']} | {r['epoch_seconds']:.2f} | {r['images_per_second']:.1f} | {r['measured_speedup']:.2f}x "
              f"| {r['flops_speedup']:.2f}x | {r['measured_over_predicted']:.2f} | {r['activation_mib']:.0f} | {book} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": machine, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
