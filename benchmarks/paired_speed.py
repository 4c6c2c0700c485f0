"""Does the paired speedup (core/paired.py) hold when the machine is busy, and does it agree with
the wall clock when it is not? (issue 23)

Each configuration is trained with `trilevel-train` (the default digits proxy: deit_t, 9 epochs)
twice: on an idle machine, and beside `--busy` processes that spin on the CPU the whole time. Dense
is trained the same two ways, so each configuration also gets a wall-clock speedup per condition
(dense's seconds / its own). Reported per configuration:

- `paired` idle and busy, and their relative difference (target: within 3%);
- `wall` idle and busy (the busy one moves with whatever else runs);
- paired (idle) against wall (idle) (target: within 10%);
- the measurement's cost, `paired_seconds` / (`train_seconds` + `paired_seconds`) (target: <= 5%).

Every finished run is written to `--json` at once and skipped when the same command runs again, so
the benchmark continues across sittings. An idle run starts only on a quiet machine, and is thrown
away and trained again when processes other than itself used more than 10% of the CPUs while it ran
(`others` in the file; the rule of `benchmarks/tabular_grid.py`).

    python benchmarks/paired_speed.py --json benchmarks/results/paired_speed_digits.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {  # name -> trilevel-train sparsity flags
    "dense": [],
    "tokens 0.7": ["--token-keep", "0.7"],
    "tokens 0.5, examples 0.75": ["--token-keep", "0.5", "--example-keep", "0.75"],
    "attention 0.5": ["--attention-keep", "0.5"],
    "all three 0.7 / 0.6 / 0.5": ["--example-keep", "0.7", "--token-keep", "0.6", "--attention-keep", "0.5"],
    "PSS input 0.5, constant": ["--token-mode", "input", "--token-keep", "0.5", "--schedule", "constant"],
    "examples 0.5 (random)": ["--example-keep", "0.5", "--example-criterion", "random"],
}
CONDITIONS = ("idle", "busy")
QUIET = 0.10  # an idle run is kept only when other processes used at most this share of the CPUs
BIN = Path(sys.executable).parent


def cpu_busy_share(seconds: float = 2.0) -> float:
    """Share of the machine's CPU time used by all processes over `seconds` (from /proc/stat)."""
    def sample():
        fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1e-9, total1 - total0)


def _machine_ticks() -> tuple[int, int]:
    """(all CPU time, busy CPU time) of the machine so far, in clock ticks (/proc/stat)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total, total - idle - iowait


def _children_ticks() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * os.sysconf("SC_CLK_TCK")


def train(flags: list[str], seed: int) -> dict:
    """One trilevel-train run; `others`: the share of the machine's CPU time that processes other
    than this run (and this script) used meanwhile."""
    total0, busy0 = _machine_ticks()
    child0 = _children_ticks()
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([str(BIN / "trilevel-train"), *flags, "--seed", str(seed), "--output", out, "--quiet"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"trilevel-train failed: {proc.stderr.strip()[-500:]}")
        m = json.loads((Path(out) / "metrics.json").read_text())
    total1, busy1 = _machine_ticks()
    others = max(0.0, (busy1 - busy0) - (_children_ticks() - child0)) / max(1, total1 - total0)
    return {**{k: m[k] for k in ("val_acc", "train_seconds", "paired_speedup", "paired_seconds", "flops_speedup",
                                 "paired_ratios")}, "others": others}


# What a busy process does: spin on a CPU core, or keep the GPU multiplying (on a GPU the pairs are
# timed on the wall clock, so the load that matters there is another process's kernels).
BUSY = {
    "cpu": "while True: pass",
    "gpu": "import torch\na = torch.randn(4096, 4096, device='cuda')\nwhile True:\n    a = (a @ a).tanh()",
}


def spinners(n: int, kind: str = "cpu") -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY[kind]]) for _ in range(n)]


def summarize(runs: dict) -> list[dict]:
    rows = []
    for name in CONFIGS:
        got = {c: runs.get(f"{name}|{c}") for c in CONDITIONS}
        dense = {c: runs.get(f"dense|{c}") for c in CONDITIONS}
        if not all(got.values()) or not all(dense.values()):
            continue
        row = {"config": name}
        for c in CONDITIONS:
            row[f"paired_{c}"] = got[c]["paired_speedup"]
            row[f"wall_{c}"] = dense[c]["train_seconds"] / got[c]["train_seconds"]
            row[f"overhead_{c}"] = got[c]["paired_seconds"] / (got[c]["train_seconds"] + got[c]["paired_seconds"])
        row["paired_busy_vs_idle"] = row["paired_busy"] / row["paired_idle"] - 1
        row["wall_busy_vs_idle"] = row["wall_busy"] / row["wall_idle"] - 1
        row["paired_vs_wall_idle"] = row["paired_idle"] / row["wall_idle"] - 1
        row["flops_speedup"] = got["idle"]["flops_speedup"]
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="results file (resumed when it exists)")
    p.add_argument("--busy", type=int, default=2, help="spinning processes beside the busy runs")
    p.add_argument("--busy-kind", choices=tuple(BUSY), default="cpu",
                   help="what they keep busy: the CPU, or the GPU (its kernels share the device)")
    p.add_argument("--train-flags", default="",
                   help="more trilevel-train flags for every run, one string: --train-flags='--device cuda'")
    p.add_argument("--no-quiet-check", action="store_true",
                   help="run idle at once and keep it whatever else ran (a dry run; `others` is still recorded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), help="subset of the configurations")
    p.add_argument("--conditions", nargs="*", default=list(CONDITIONS), choices=CONDITIONS,
                   help="run only these conditions now (the rest on a later call)")
    args = p.parse_args()
    path = Path(args.json)
    data = json.loads(path.read_text()) if path.exists() else {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "runs": {}}
    for condition in args.conditions:
        for name in ["dense", *[c for c in args.configs if c != "dense"]]:
            key = f"{name}|{condition}"
            if key in data["runs"]:
                continue
            while True:
                procs = []
                if condition == "idle" and not args.no_quiet_check:
                    while (share := cpu_busy_share()) > QUIET:
                        print(f"waiting for a quiet machine ({share:.0%} of the CPUs busy)", flush=True)
                        time.sleep(30)
                else:
                    procs = spinners(args.busy, args.busy_kind)
                try:
                    start = time.time()
                    run = {**train([*CONFIGS[name], *shlex.split(args.train_flags)], args.seed),
                           "wall": time.time() - start}
                finally:
                    for proc in procs:
                        proc.kill()
                if condition == "busy" or run["others"] <= QUIET or args.no_quiet_check:
                    break
                print(f"{key}: other processes used {run['others']:.0%} of the CPUs meanwhile; again", flush=True)
            data["runs"][key] = run
            print(key, json.dumps({k: v for k, v in data["runs"][key].items() if k != "paired_ratios"}), flush=True)
            data["summary"] = summarize(data["runs"])
            path.write_text(json.dumps(data, indent=2))
    for row in data.get("summary", []):
        print(" | ".join(f"{k} {v:+.3f}" if isinstance(v, float) and "vs" in k else
                         f"{k} {v:.3f}" if isinstance(v, float) else str(v) for k, v in row.items()))


if __name__ == "__main__":
    main()
