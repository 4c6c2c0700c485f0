"""Train a grid over the tri-level space once and store every learning curve as a table.

A search strategy's quality depends on which configurations it tries and when it stops them,
not on training itself, so one grid of real learning curves lets `benchmarks/replay.py` replay
hundreds of searches in minutes. Each configuration is a real `Trainer` run on `digits`; per
epoch the table keeps validation accuracy, measured training seconds and training FLOPs.

    python benchmarks/tabular_grid.py --out benchmarks/data/grid_digits.json

Measured on CPU-2 (2 cores, no GPU), alone on the machine: 27 configurations x 9 epochs took
TOTAL_WALL (see `wall_seconds` in the file). Proxy (why: see `PROXY` below): ViT depth 4,
width 64, 4 heads, 32 px / patch 4 (64 tokens), batch 32, lr 1e-3, warm-up 5 %, drop path 0.1,
augmentation on, seed 0 for every configuration; the tri-level space's fixed settings
(forgetting examples, attentive tokens, warm-up + cosine keep schedule).

Configurations run one at a time, dense first, with `torch.set_num_threads(2)`, after one
discarded warm-up epoch (so the first configuration does not pay the process's cold start).
The file is rewritten atomically after every configuration and configurations already in it
are skipped, so an interrupted run continues where it stopped with the same command.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from trilevel.core.config import RunConfig
from trilevel.core.trainer import Trainer
from trilevel.spaces import load_space

FORMAT = "trilevel.grid"
GRID = {
    "example_keep": [0.5, 0.75, 1.0],
    "token_keep": [0.5, 0.75, 1.0],
    "attention_keep": [0.3, 0.65, 1.0],
}
# A proxy that fits the whole grid in about an hour on 2 CPU cores yet learns clearly above
# chance (10 %) in 9 epochs; deit_t (depth 12, width 192) would take ~10x longer per epoch.
PROXY = {
    "model": "vit_t",
    "model_kwargs": {"depth": 4, "embed_dim": 64, "num_heads": 4},
    "dataset": "digits",
    "epochs": 9,
    "img_size": 32,
    "patch_size": 4,
    "batch_size": 32,
    "lr": 1e-3,
    "warmup": 0.05,
    "drop_path": 0.1,
    "augment": True,
    "seed": 0,
    "device": "cpu",
}
THREADS = 2


def grid_points() -> list[dict[str, float]]:
    """Every grid configuration, dense (all keeps 1.0) first."""
    points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    return sorted(points, key=lambda p: not all(v == 1.0 for v in p.values()))


def run_config(proxy: dict, params: dict[str, float]) -> RunConfig:
    space = load_space("tri-level")
    return RunConfig.from_dict({**proxy, "sparsity": space.to_sparsity(params).to_dict()})


def train_one(proxy: dict, params: dict[str, float]) -> dict:
    """One configuration's learning curve (per-epoch val_acc, train_seconds, train_flops)."""
    started = time.perf_counter()
    metrics = Trainer(run_config(proxy, params)).fit()
    if metrics["status"] != "completed":
        raise RuntimeError(f"{params}: training {metrics['status']}")
    history = metrics["history"]
    return {
        "params": params,
        "val_acc": [r["val_acc"] for r in history],
        "train_seconds": [r["train_seconds"] for r in history],
        "train_flops": [r["train_flops"] for r in history],
        "expected_train_flops": metrics["expected_train_flops"],
        "wall_seconds": time.perf_counter() - started,
    }


def warm_up(proxy: dict) -> None:
    """One short dense epoch, discarded: thread pools, allocator and caches start cold."""
    Trainer(run_config({**proxy, "epochs": 1, "train_subset": 256}, {})).fit()


def machine() -> dict:
    info = Path("/proc/cpuinfo")
    names = re.findall(r"^model name\s*:\s*(.+)$", info.read_text(), re.M) if info.exists() else []
    cpu = names[0] if names else platform.processor()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "threads": THREADS, "device": "cpu",
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
    }


def load_or_new(path: Path, proxy: dict, command: str) -> dict:
    """The stored table (refusing one made with another proxy or grid), or a new empty one."""
    if path.exists():
        table = json.loads(path.read_text())
        if table.get("format") != FORMAT or table["proxy"] != proxy or table["grid"] != GRID:
            raise SystemExit(f"{path} holds a different grid or proxy; move it away or pick another --out")
        return table
    return {
        "format": FORMAT, "version": 1, "command": command, "proxy": proxy, "grid": GRID,
        "fixed": load_space("tri-level").fixed, "machine": machine(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "finished": None,
        "wall_seconds": 0.0, "configs": [],
    }


def save(path: Path, table: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/data/grid_digits.json"))
    p.add_argument("--epochs", type=int, default=PROXY["epochs"], help="change only to probe timing")
    p.add_argument("--limit", type=int, default=None, help="train at most this many new configurations")
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    proxy = {**PROXY, "epochs": args.epochs}
    table = load_or_new(args.out, proxy, " ".join(["python", *sys.argv]))
    done = [c["params"] for c in table["configs"]]
    todo = [params for params in grid_points() if params not in done][: args.limit]
    session_start = time.perf_counter()
    if todo:
        warm_up(proxy)
    for i, params in enumerate(todo, 1):
        row = train_one(proxy, params)
        table["configs"].append(row)
        table["wall_seconds"] += time.perf_counter() - session_start
        session_start = time.perf_counter()
        if len(table["configs"]) == len(grid_points()):
            table["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        save(args.out, table)
        print(f"[{len(table['configs'])}/{len(grid_points())}] {params}: "
              f"acc {row['val_acc'][-1]:.3f}, train {sum(row['train_seconds']):.1f}s, "
              f"wall {row['wall_seconds']:.1f}s (total {table['wall_seconds'] / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
