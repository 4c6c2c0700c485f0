"""Train a grid over the tri-level space once and store every learning curve as a table.

A search strategy's quality depends on which configurations it tries and when it stops them,
not on training itself, so one grid of real learning curves lets `benchmarks/replay.py` replay
hundreds of searches in minutes. Each configuration is a real `Trainer` run on `digits`; per
epoch the table keeps validation accuracy, measured training seconds and training FLOPs.

    python benchmarks/tabular_grid.py --proxy tiny --out benchmarks/data/grid_digits.json            # 27 configs
    python benchmarks/tabular_grid.py --proxy tiny --grid 5 --out benchmarks/data/grid5_digits.json  # 125 configs
    python benchmarks/tabular_grid.py --seeds 0 1 --out benchmarks/data/grid3_search_digits.json      # 27 x 2 runs
    python benchmarks/tabular_grid.py --seeds 0 1 --extras --out benchmarks/data/grid3_search_digits.json  # + 8 x 2
    python benchmarks/tabular_grid.py --grid 5 --seeds 0 1 --extras --out benchmarks/data/grid5_search_digits.json

`--extras` also trains, on every seed, what a user would do without a search (stored under
`extras`, scored by `replay.py` beside the strategies): the papers' published hand-set settings
(`PAPER_SETTINGS`, each with the repository file it is read from) and dense with its whole
schedule compressed to the search's train-shorter fractions of the epochs (`TRAIN_SHORTER_FRACTIONS`).
The papers' settings keep their *fractions* of training (Tri-Level's 10 + 100 of 300 epochs
schedule, InfoBatch's final 12.5 %, PSS's last 10 of 300 epochs dense, one cycle per epoch) and
their ratios; nothing else of their recipes (those are the proxy's).

`--proxy search` (the default) trains exactly what a default `trilevel-search --model deit_t` trial
trains: deit_t on digits with the run config's defaults resolved (the `proxy` recipe, 16 px,
4 px patches) and the tri-level space's fixed settings. `--proxy tiny` is the 2026-11-21 proxy
below, kept so the stored tables stay reproducible. `--seeds` trains every configuration on each
seed (seed-major: the table is complete for the first seed before the second starts), so the
table carries its own noise level per point.

Measured on CPU-2 (2 cores, no GPU), 2026-11-21: the 27-point grid took 12.8 min wall in all
(`wall_seconds` in the file), of which 6.0 min were the training runs and the rest waiting for
other jobs to leave the CPUs; the 125-point grid took 48.4 min on an idle machine (35.3 min of
measured training). No run had to be discarded.

Proxy: ViT depth 4, width 64, 4 heads, 32 px / patch 4 (64 tokens), batch 16, lr 2e-3, warm-up
5 %, no drop path, no augmentation, seed 0 for every configuration; the tri-level space's fixed
settings (forgetting examples, attentive tokens, warm-up + cosine keep schedule). Why: dense
reaches 87 % in 9 epochs (the RunConfig defaults batch 32, lr 1e-3, drop path 0.1, augmentation
reach 53 %, lr 2e-3 with them 61 %: regularisation only slows a 9-epoch run) at ~1.8 s per epoch,
so the grid fits in minutes, not the hour allowed, which keeps it clear of other jobs on the
machine. A wider/deeper proxy (depth 6, width 128) was 3.5x slower and reached only 40 %.

Configurations run one at a time, dense first, with `torch.set_num_threads(2)`, after one
discarded warm-up epoch (so the first configuration does not pay the process's cold start).
Timings are only kept from runs during which other processes used < 10 % of the CPUs (each
epoch is checked; see `CpuMeter`): a contended configuration is re-run after the machine is
quiet again. The file is rewritten atomically after every configuration and configurations
already in it are skipped, so an interrupted run continues where it stopped with the same
command. A table continued in another session may be trained on another machine: each row records
its `cpu`, and `replay.py` times rows from each CPU against dense on that CPU (the 125-point search
table's last 42 rows ran on an Intel Xeon 1.5x slower than the AMD EPYC that trained the rest).
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

from trilevel.core.config import RunConfig, SparsityConfig
from trilevel.core.trainer import Trainer
from trilevel.reports.shorter import shorter_epochs
from trilevel.search.constants import TRAIN_SHORTER_FRACTIONS
from trilevel.spaces import load_space

FORMAT = "trilevel.grid"
GRIDS = {
    # 27 configurations, ~13 min: the first table.
    "3": {
        "example_keep": [0.5, 0.75, 1.0],
        "token_keep": [0.5, 0.75, 1.0],
        "attention_keep": [0.3, 0.65, 1.0],
    },
    # 125 configurations, ~30 min: large enough that a search budget of 25 % of the grid's epochs
    # is not mostly spent on the sampler's random start-up trials and one rung per configuration.
    "5": {
        "example_keep": [0.5, 0.625, 0.75, 0.875, 1.0],
        "token_keep": [0.5, 0.625, 0.75, 0.875, 1.0],
        "attention_keep": [0.3, 0.475, 0.65, 0.825, 1.0],
    },
}
# Small enough that the grid takes minutes on 2 CPU cores, yet learns clearly above chance
# (10 %) in 9 epochs; the reasons for each setting are in the module docstring.
TINY_PROXY = {
    "model": "vit_t",
    "model_kwargs": {"depth": 4, "embed_dim": 64, "num_heads": 4},
    "dataset": "digits",
    "epochs": 9,
    "img_size": 32,
    "patch_size": 4,
    "batch_size": 16,
    "lr": 2e-3,
    "warmup": 0.05,
    "drop_path": 0.0,
    "augment": False,
    # every recipe value set, so the stored grids stay reproducible whatever the default recipe is
    "label_smoothing": 0.1,
    "weight_decay": 0.05,
    "min_lr": 1e-5,
    "clip_grad": 0.0,
    "seed": 0,
    "device": "cpu",
}


def search_proxy(epochs: int | None = None) -> dict:
    """A default `trilevel-search --model deit_t` trial's run config (`--epochs N`: that search's,
    whose recipe `auto` chooses for its length), every recipe value resolved (so the stored table
    records what was trained even if the defaults change later)."""
    lengths = {} if epochs is None else {"epochs": epochs}
    run = RunConfig(model="deit_t", dataset="digits", device="cpu", **lengths).resolved().to_dict()
    run.pop("sparsity")
    return run


# What each paper ships, as our SparsityConfig; read from the repositories on 2026-12-01.
PAPER_SETTINGS = {
    "Tri-Level, DeiT-T setting": (
        {"example_keep": 0.8, "token_keep": 0.9, "attention_keep": 0.1},
        "ZLKong/Tri-Level-ViT@2bf7f80: README.md DeiT-T command (--keep_ratio 0.9 --attn_ratio 0.1 "
        "--remove-n 64058 = 5 % per swap), main.py (20 % set aside, swaps every 30 of 300 epochs, at most 5), "
        "engine.py (keep 1.0 for 10 epochs, cosine over 100)"),
    "EViT keep 0.7, fused": (
        {"token_keep": 0.7, "token_fuse": True},
        "youweiliang/evit@5ca95a7: run_code.sh (DeiT-S: --base_keep_rate 0.7 --fuse_token "
        "--shrink_start_epoch 10 --shrink_epochs 100; blocks 3, 6, 9); EViT ships no DeiT-T setting"),
    "InfoBatch r = 0.5": (
        {"example_criterion": "loss", "example_keep": 0.5, "example_anneal": 0.125},
        "NUS-HPC-AI-Lab/InfoBatch@8bbb012: README.md and infobatch/infobatch.py (--ratio 0.5 --delta 0.875)"),
    "PSS cyclic 0.8 to 0, magnitude": (
        {"token_mode": "input", "token_keep": 0.2, "token_sampling": "magnitude", "schedule": "cyclic",
         "schedule_step": 0.2, "schedule_cooldown": 10 / 300},
        "BradMcDanel/pss@90c12ba: deit/configs/deit-s-224/magnitude_cyclic_80_0.sh, deit/patch_scheduler.py "
        "(one cycle per epoch, steps of 0.2, dense for the last 10 of 300 epochs)"),
}


def extra_runs(epochs: int) -> list[dict]:
    """The fixed settings `--extras` trains (name, kind, source, sparsity, epochs), dense reference first."""
    # Dense again, full length, in the same session as the other extras: their speedups are measured
    # against it (side by side), not against a grid trained on another day.
    out = [{"name": "dense (reference)", "kind": "reference", "source": "dense, trained beside the extras",
            "sparsity": SparsityConfig().to_dict(), "epochs": epochs}]
    out += [{"name": name, "kind": "paper", "source": source, "sparsity": SparsityConfig(**values).to_dict(),
             "epochs": epochs} for name, (values, source) in PAPER_SETTINGS.items()]
    for e in shorter_epochs(epochs, TRAIN_SHORTER_FRACTIONS):
        out.append({"name": f"dense, {e} of {epochs} epochs", "kind": "shorter",
                    "source": "the whole schedule compressed (trilevel-search --train-shorter)",
                    "sparsity": SparsityConfig().to_dict(), "epochs": e})
    return out


PROXIES = {"search": search_proxy, "tiny": lambda epochs=None: dict(TINY_PROXY)}
THREADS = 2
QUIET = 0.10  # other processes may use at most this share of the CPUs while a configuration trains


class CpuMeter:
    """Share of all CPU time that other processes (or the hypervisor: steal) used between readings.

    Torch's threads slow down ~10x when another process wants the same 2 cores (measured: a dense
    epoch took 1.5 s alone, 16 s beside a test run), so timings are only kept from quiet epochs.
    """

    def __init__(self):
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int]:
        user, nice, system, idle, iowait, irq, softirq, steal = map(
            int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        )
        total = user + nice + system + idle + iowait + irq + softirq + steal
        own = sum(map(int, Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[11:13]))
        return total, total - idle - iowait, own

    def others(self) -> float:
        total, busy, own = self._read()
        t0, b0, o0 = self._last
        self._last = (total, busy, own)
        return max(0, (busy - b0) - (own - o0)) / max(1, total - t0)


def wait_quiet() -> None:
    """Block until other processes leave the CPUs (checked over 5 s every 30 s)."""
    meter = CpuMeter()
    while True:
        time.sleep(5)
        share = meter.others()
        if share < QUIET:
            return
        print(f"waiting: other processes use {share:.0%} of the CPUs", flush=True)
        time.sleep(25)
        meter.others()


def grid_points(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    """Every grid configuration, dense (all keeps 1.0) first."""
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    return sorted(points, key=lambda p: not all(v == 1.0 for v in p.values()))


def grid_runs(grid: dict[str, list[float]], seeds: list[int]) -> list[tuple[int, dict[str, float]]]:
    """(seed, configuration) pairs, seed-major, dense first within each seed."""
    return [(seed, params) for seed in seeds for params in grid_points(grid)]


def run_config(proxy: dict, params: dict[str, float]) -> RunConfig:
    space = load_space("tri-level")
    return RunConfig.from_dict({**proxy, "sparsity": space.to_sparsity(params).to_dict()})


def train_one(proxy: dict, params: dict[str, float], seed: int, extra: dict | None = None) -> dict:
    """One configuration's learning curve (per-epoch val_acc, train_seconds, train_flops) on one
    seed and the CPU share other processes took during each epoch (training + evaluation). An
    `extra` (`extra_runs`) brings its own sparsity and epochs instead of grid `params`."""
    started = time.perf_counter()
    others: list[float] = []
    config = (RunConfig.from_dict({**proxy, "seed": seed, "epochs": extra["epochs"], "sparsity": extra["sparsity"]})
              if extra else run_config({**proxy, "seed": seed}, params))
    trainer = Trainer(config, callback=lambda *_: others.append(meter.others()))
    meter = CpuMeter()
    metrics = trainer.fit()
    if metrics["status"] != "completed":
        raise RuntimeError(f"{extra['name'] if extra else params}: training {metrics['status']}")
    history = metrics["history"]
    return {
        **(extra or {"params": params}),
        "seed": seed,
        "val_acc": [r["val_acc"] for r in history],
        "train_seconds": [r["train_seconds"] for r in history],
        "train_flops": [r["train_flops"] for r in history],
        "expected_train_flops": metrics["expected_train_flops"],
        "others_cpu": others,
        "contended": max(others) >= QUIET,
        "cpu": machine()["cpu"],  # a table built over several sessions may span machines (replay.py rescales)
        "wall_seconds": time.perf_counter() - started,
    }


def warm_up(proxy: dict) -> None:
    """One short dense epoch, discarded: thread pools, allocator and caches start cold."""
    Trainer(run_config({**proxy, "epochs": 1, "train_subset": 256}, {})).fit()


def machine(threads: int = THREADS) -> dict:
    info = Path("/proc/cpuinfo")
    names = re.findall(r"^model name\s*:\s*(.+)$", info.read_text(), re.M) if info.exists() else []
    cpu = names[0] if names else platform.processor()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "threads": threads, "device": "cpu",
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
    }


def same_training(stored: dict, proxy: dict) -> bool:
    """Whether a stored proxy trains what `proxy` trains: equal once each is completed with the
    run config's defaults (fields added since the table was made, e.g. `aa`, are then compared at
    their default), ignoring the loader's worker count (0 on CPU either way)."""
    def full(d: dict) -> dict:
        out = RunConfig.from_dict({**d, "sparsity": {}}).resolved().to_dict()
        out.pop("workers", None)
        return out

    return full(stored) == full(proxy)


def load_or_new(path: Path, proxy: dict, grid: dict, seeds: list[int], command: str, threads: int = THREADS) -> dict:
    """The stored table (refusing one made with another proxy or grid), or a new empty one.
    More seeds may be added to a stored table by running it again with a longer `--seeds`."""
    if path.exists():
        table = json.loads(path.read_text())
        if table.get("format") != FORMAT or not same_training(table["proxy"], proxy) or table["grid"] != grid:
            raise SystemExit(f"{path} holds a different grid or proxy; move it away or pick another --out")
        proxy.clear()
        proxy.update(table["proxy"])  # train exactly what the stored rows were trained with
        table["seeds"] = sorted(set(table.get("seeds", [proxy.get("seed", 0)])) | set(seeds))
        return table
    return {
        "format": FORMAT, "version": 2, "command": command, "proxy": proxy, "grid": grid, "seeds": seeds,
        "fixed": load_space("tri-level").fixed, "machine": machine(threads),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "finished": None,
        "wall_seconds": 0.0, "discarded_runs": 0, "configs": [],
    }


def save(path: Path, table: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/data/grid_digits.json"))
    p.add_argument("--grid", choices=sorted(GRIDS), default="3", help="values per keep ratio (3: 27 configurations, 5: 125)")
    p.add_argument("--proxy", choices=sorted(PROXIES), default="search",
                   help="search: a default deit_t search trial (default); tiny: the 2026-11-21 tables' ViT")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="train every configuration on each seed")
    p.add_argument("--epochs", type=int, default=None,
                   help="another proxy length (the search proxy's recipe resolved for it): for rank studies "
                        "across lengths, benchmarks/length_ranks.py")
    p.add_argument("--any-load", action="store_true",
                   help="train whatever else runs: no waiting for a quiet machine and no re-runs, for a table "
                        "whose accuracies matter and not its timings (rows keep `contended`)")
    p.add_argument("--threads", type=int, default=THREADS, help="torch threads per configuration")
    p.add_argument("--limit", type=int, default=None, help="train at most this many new configurations")
    p.add_argument("--retries", type=int, default=3, help="re-runs of a configuration whose timing was contended")
    p.add_argument("--extras", action="store_true",
                   help="also train the papers' hand-set settings, dense trained shorter and a dense reference")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    proxy = PROXIES[args.proxy](args.epochs)
    if args.epochs is not None:
        proxy["epochs"] = args.epochs
    grid = GRIDS[args.grid]
    table = load_or_new(args.out, proxy, grid, args.seeds, " ".join(["python", *sys.argv]), args.threads)
    default_seed = proxy.get("seed", 0)  # version-1 tables have one seed and no per-row seed
    done = [(c.get("seed", default_seed), c["params"]) for c in table["configs"]]
    runs = grid_runs(grid, table["seeds"])
    todo = [(seed, params, None) for seed, params in runs if (seed, params) not in done]
    if args.extras:
        table.setdefault("extras", [])
        extras_done = {(r["seed"], r["name"]) for r in table["extras"]}
        todo += [(seed, None, extra) for seed in table["seeds"] for extra in extra_runs(proxy["epochs"])
                 if (seed, extra["name"]) not in extras_done]
    todo = todo[: args.limit]
    session_start = time.perf_counter()
    if todo:
        warm_up(proxy)
    for seed, params, extra in todo:
        what = extra["name"] if extra else params
        for _ in range(1 + (0 if args.any_load else args.retries)):
            if not args.any_load:
                wait_quiet()
            row = {**train_one(proxy, params, seed, extra), "threads": args.threads}  # a resume may change it
            if not row["contended"] or args.any_load:
                break
            table["discarded_runs"] += 1
            print(f"{what}: other processes took up to {max(row['others_cpu']):.0%} of the CPUs; "
                  f"timing discarded", flush=True)
        table["extras" if extra else "configs"].append(row)
        table["wall_seconds"] += time.perf_counter() - session_start
        session_start = time.perf_counter()
        if len(table["configs"]) == len(runs):
            table["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        save(args.out, table)
        print(f"[{len(table['configs'])}/{len(runs)} + {len(table.get('extras', []))} extras] seed {seed} {what}: "
              f"acc {row['val_acc'][-1]:.3f}, train {sum(row['train_seconds']):.1f}s, "
              f"wall {row['wall_seconds']:.1f}s (total {table['wall_seconds'] / 60:.1f} min)", flush=True)

if __name__ == "__main__":
    main()
