"""Does the configuration a search picked really train faster at equal accuracy?

Trains the dense baseline and the exported best configuration (`best.yaml`) side by side on the
same machine, seeds interleaved (dense s0, best s0, dense s1, ...), for the same number of epochs,
with the same code path as `trilevel-train`. Reports wall-clock training time saved and accuracy
difference with their spread over seeds. Optionally also trains every other Pareto configuration
once and reports proxy fidelity: the Spearman rank correlation between a configuration's accuracy
in the search and after this longer confirmation training.

    python benchmarks/confirm.py runs/deit_t-digits-tri-level --epochs 12 --seeds 3 --pareto
    python benchmarks/confirm.py RUN_DIR --seeds 3 --first-seed 20 --alternatives "InfoBatch r = 0.5"

`--alternatives PAPER` also trains, on the same seeds and interleaved, what a user would do instead
of searching (issue 14): dense trained shorter to the time the pick takes (its whole schedule
compressed to round(epochs x pick seconds / dense seconds) epochs, measured on the first seed's pair),
and one of the papers' hand-set settings (a name the search's records use, `trilevel.spaces.papers`,
e.g. tri-level-deit-t; or one of `benchmarks/tabular_grid.py` PAPER_SETTINGS). Each gets
its paired difference to dense and to the pick with a 90 % t interval over the seeds
(`trilevel.reports.noise.paired_delta`), and its speed two ways: wall-clock training time on seeds
timed on one quiet machine, and the paired speedup each sparse run measures inside itself (dense
steps timed beside its own; dense trained shorter: epochs / its epochs), which holds on a busy
machine too. `--also SPARSITY_YAML` adds one more setting on the same seeds (row `also`; e.g. one
outside the search's space that a side measurement suggested). Every finished run goes to `--json` at once and is not
trained again, so a benchmark longer than one sitting continues with the same command; speedups
are only taken from seeds whose runs were all timed on one boot of one machine with no other
process taking the CPUs. `--jobs 2` trains two runs at a time (one thread each): their wall times
then disturb each other and only the paired speedups count, for a machine that is never quiet
long enough. `--train-subset` / `--val-subset` confirm on more data than the search saw:

    python benchmarks/confirm.py RUN_DIR --seeds 3 --first-seed 20 --alternatives "PSS cyclic 0.8 to 0, magnitude" \
        --train-subset 10000 --val-subset 0 --json benchmarks/results/alternatives_cifar.json --stop-after 5400
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path


from trilevel.core import RunConfig, SparsityConfig, train


def load_pick(run_dir: Path) -> RunConfig:
    """best.yaml, which must hold a sparse configuration: when the search recommends dense trained
    shorter instead, there is no pick to confirm against dense."""
    best = RunConfig.load(run_dir / "best.yaml")
    if best.sparsity.is_dense:
        raise SystemExit(f"{run_dir / 'best.yaml'} is dense (the search recommends training dense for "
                         f"{best.epochs} epochs instead of a sparse pick): nothing sparse to confirm")
    return best


def run(config: RunConfig) -> dict:
    m = train(config)
    if m["status"] != "completed":
        raise SystemExit(f"confirmation run failed: {m['status']}")
    return {"val_acc": m["val_acc"], "train_seconds": m["train_seconds"], "flops_per_image": m["flops_per_image"],
            # dense steps timed inside the run beside its own (None for dense): a speed figure that
            # holds on a busy machine, where the runs' wall times do not
            "paired_speedup": m.get("paired_speedup")}


def spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {std:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--epochs", type=int, help="default: the search's epochs per trial")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--pareto", action="store_true", help="also train the other Pareto configurations once")
    p.add_argument("--json", type=Path, help="write results here")
    p.add_argument("--alternatives", metavar="PAPER",
                   help="also train dense shorter at the pick's time and this hand-set paper setting")
    alt = p.add_argument_group("--alternatives only", "resumable through --json; data overrides for a "
                               "confirmation on more data than the search's proxy saw")
    alt.add_argument("--also", metavar="SPARSITY_YAML",
                     help="also train this setting on the same seeds (a bare sparsity mapping or a best.yaml, as "
                          "trilevel-train --sparsity takes; e.g. one outside the search's space)")
    alt.add_argument("--data", help="dataset path instead of best.yaml's")
    alt.add_argument("--train-subset", type=int, help="training images instead of best.yaml's")
    alt.add_argument("--val-subset", type=int, help="validation images instead of best.yaml's (0: all)")
    alt.add_argument("--retries", type=int, default=2,
                     help="wait for a quiet machine before each run and re-run a contended one up to this "
                          "many times (0: neither; the CPU share of other processes is recorded either way)")
    alt.add_argument("--stop-after", type=float, metavar="SECONDS",
                     help="start no run after this many seconds; the same command continues")
    alt.add_argument("--jobs", type=int, default=1,
                     help="runs at once, one torch thread each (> 1: no waiting for a quiet machine and no "
                          "--retries; speed from the runs' paired speedups, their wall times disturbing each other)")
    args = p.parse_args()
    if not args.alternatives:
        given = [f for f in ("also", "data", "train_subset", "val_subset", "stop_after") if getattr(args, f) is not None]
        if given:
            p.error(f"--{given[0].replace('_', '-')} is for --alternatives only")
    if args.retries < 0 or (args.train_subset is not None and args.train_subset < 1) \
            or (args.val_subset is not None and args.val_subset < 0) or args.jobs < 1:
        p.error("--retries and --val-subset must be >= 0, --train-subset and --jobs >= 1")
    if args.jobs > 1 and not args.alternatives:
        p.error("--jobs is for --alternatives only")
    if args.alternatives:
        from trilevel.core.errors import UserError

        try:
            alternatives(args)
        except UserError as e:
            raise SystemExit(f"confirm.py: {e}") from None
        return

    best = load_pick(args.run_dir)
    epochs = args.epochs or best.epochs
    best = best.replace(epochs=epochs, output=None)
    dense = best.replace(sparsity=SparsityConfig())
    started = time.time()
    pairs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        d = run(dense.replace(seed=seed))
        b = run(best.replace(seed=seed))
        pairs.append({"seed": seed, "dense": d, "best": b})
        print(f"seed {seed}: dense {100 * d['val_acc']:.2f}% {d['train_seconds']:.0f}s | "
              f"best {100 * b['val_acc']:.2f}% {b['train_seconds']:.0f}s", flush=True)
    saved = [100 * (1 - x["best"]["train_seconds"] / x["dense"]["train_seconds"]) for x in pairs]
    diff = [100 * (x["best"]["val_acc"] - x["dense"]["val_acc"]) for x in pairs]
    print(f"\n{epochs} epochs x {args.seeds} seeds: training time saved {spread(saved)} %, "
          f"accuracy difference {spread(diff)} points (best - dense)")
    result = {"epochs": epochs, "seeds": args.seeds, "best": best.sparsity.to_dict(), "pairs": pairs,
              "time_saved_pct": saved, "acc_diff_points": diff}

    if args.pareto:
        from scipy.stats import spearmanr

        front = json.loads((args.run_dir / "pareto.json").read_text())
        search_acc, confirm_acc = [], []
        for trial in front:
            config = best.replace(sparsity=SparsityConfig.from_dict(trial["config"]), seed=args.first_seed)
            same = [x for x in pairs if x["seed"] == args.first_seed]
            if trial["config"] == best.sparsity.to_dict():
                acc = same[0]["best"]["val_acc"]
            elif SparsityConfig.from_dict(trial["config"]).is_dense:
                acc = same[0]["dense"]["val_acc"]
            else:
                acc = run(config)["val_acc"]
            search_acc.append(trial["val_acc"])
            confirm_acc.append(acc)
            print(f"pareto {trial['trial_id']}: search {100 * trial['val_acc']:.2f}% -> confirm {100 * acc:.2f}%")
        rho = spearmanr(search_acc, confirm_acc).statistic if len(front) > 2 else float("nan")
        print(f"proxy fidelity: Spearman rho = {rho:.2f} over {len(front)} Pareto configurations")
        result.update(pareto_search_acc=search_acc, pareto_confirm_acc=confirm_acc, spearman=rho)
    result["wall_seconds"] = time.time() - started
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


ALTERNATIVES = ("dense", "pick", "paper", "shorter")  # trained in this order on each seed
ALSO = "also"  # `--also`'s setting, trained last on each seed when given


def row_names(result: dict) -> tuple[str, ...]:
    """The rows this benchmark trains: the four alternatives, and `--also`'s when it was given."""
    return ALTERNATIVES + ((ALSO,) if ALSO in result["runs"] else ())


def _tabular_grid():
    """benchmarks/tabular_grid.py as a module: PAPER_SETTINGS and its quiet-machine guard."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tabular_grid", Path(__file__).with_name("tabular_grid.py"))
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    return grid


def paper_setting(name: str, grid) -> tuple[dict, str]:
    """(SparsityConfig fields, source) of a paper's setting: one the search tries first
    (`trilevel.spaces.papers`, by its name in the search's records, e.g. tri-level-deit-t) or one
    of the grid tables' extras (`tabular_grid.PAPER_SETTINGS`)."""
    from trilevel.spaces.papers import PAPERS

    searched = {paper.name: (dict(paper.sparsity), paper.source) for paper in PAPERS}
    tables = grid.PAPER_SETTINGS
    if name in searched:
        return searched[name]
    if name in tables:
        return tables[name]
    raise SystemExit(f"unknown paper setting {name!r}; one of {sorted(searched) + sorted(tables)}")


def machine_id() -> str:
    """This boot of this machine: times measured under different ids are not compared."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    return f"{platform.node()}/{boot.read_text().strip() if boot.exists() else 'unknown'}"


def measured_run(config: RunConfig, grid, retries: int) -> dict:
    """`run`, plus the CPU share other processes took meanwhile. With `retries`, first wait for a
    quiet machine and re-run a contended run (up to `retries` times; on CPU the accuracy of a seed
    is reproducible, so only the timing changes). Only CPU runs are checked: on a GPU the data
    loader's own worker processes would count as "other processes"."""
    from trilevel.core.trainer import resolve_device

    on_cpu = resolve_device(config.device).type == "cpu"
    spent, attempts = 0.0, 0
    while True:
        if retries and on_cpu:
            grid.wait_quiet()
        meter, began = grid.CpuMeter(), time.perf_counter()
        result = run(config)
        spent += time.perf_counter() - began
        result["wall_seconds"] = spent  # every attempt: what the benchmark cost
        result["others_cpu"] = meter.others() if on_cpu else None
        result["contended"] = on_cpu and result["others_cpu"] >= grid.QUIET
        if not result["contended"] or attempts == retries:
            return result
        attempts += 1
        print(f"contended ({result['others_cpu']:.0%} of the CPUs taken by other processes): re-running", flush=True)


def _differences(stored: dict, header: dict) -> list[str]:
    """'key: stored != now' for every field (one level into dicts) that differs."""
    out = []
    for key, now in header.items():
        was = stored.get(key)
        if isinstance(now, dict) and isinstance(was, dict):
            out += [f"{key}.{k}: {was.get(k)!r} != {now.get(k)!r}" for k in sorted(set(was) | set(now))
                    if was.get(k) != now.get(k)]
        elif was != now:
            out.append(f"{key}: {was!r} != {now!r}")
    return out


def load_or_start(path: Path | None, header: dict) -> dict:
    """The stored benchmark to continue (refusing one that trained something else), or a new one."""
    if path is not None and path.exists():
        stored = json.loads(path.read_text())
        if "base" not in stored or not isinstance(stored.get("runs"), dict) or "dense" not in stored["runs"]:
            raise SystemExit(f"{path} was written by an earlier confirm.py that could not continue a benchmark; "
                             f"move it away or pick another --json")
        differ = _differences(stored, header)
        if differ:
            raise SystemExit(f"{path} holds a different benchmark ({'; '.join(differ[:3])}); "
                             f"move it away or pick another --json")
        return stored
    names = ALTERNATIVES + ((ALSO,) if header.get(ALSO) else ())
    return {**header, "shorter_epochs": None, "runs": {name: [] for name in names},
            "summary": None, "wall_seconds": 0.0}


def save(path: Path | None, result: dict) -> None:
    if path is not None:
        from trilevel.core.atomic import atomic_write_text

        atomic_write_text(path, json.dumps(result, indent=2))


def comparable(rows: list[dict]) -> bool:
    """Whether these runs' times may be compared: one boot of one machine, none contended, each
    trained alone (`--jobs 1`; its sibling's load can stay under the contention threshold)."""
    return (len({r["machine"] for r in rows}) == 1 and not any(r["contended"] for r in rows)
            and all(r.get("jobs", 1) == 1 for r in rows))


def shorter_length(result: dict, epochs: int) -> int:
    """Dense trained shorter gets the pick's measured time: the epochs scaled by pick / dense seconds
    of the first seed whose pair is comparable; else by the pick's paired speedup (measured inside
    its own run, whatever else ran); else, with a warning, by the first pair's seconds."""
    picks = {r["seed"]: r for r in result["runs"]["pick"]}
    pairs = [(d, picks[d["seed"]]) for d in result["runs"]["dense"] if d["seed"] in picks]
    good = [pair for pair in pairs if comparable(list(pair))]
    if good:
        dense, pick = good[0]
        return min(epochs, max(1, round(epochs * pick["train_seconds"] / dense["train_seconds"])))
    paired = next((pick.get("paired_speedup") for _, pick in pairs if pick.get("paired_speedup")), None)
    if paired:
        print(f"no dense/pick pair was timed on one quiet machine; dense trained shorter gets the pick's "
              f"paired speedup ({paired:.2f}x)", flush=True)
        return min(epochs, max(1, round(epochs / paired)))
    print("warning: no dense/pick pair was timed on one quiet machine; dense trained shorter gets "
          "the first pair's ratio", flush=True)
    dense, pick = pairs[0]
    return min(epochs, max(1, round(epochs * pick["train_seconds"] / dense["train_seconds"])))


def summarize(result: dict) -> dict:
    """Accuracy and paired differences over the seeds with all runs (four, five with `--also`);
    speedups only over the seeds whose runs were all timed on one boot of one machine, none of them
    contended."""
    from trilevel.reports.noise import paired_delta

    by_seed = {name: {r["seed"]: r for r in rows} for name, rows in result["runs"].items()}
    seeds = sorted(set.intersection(*(set(rows) for rows in by_seed.values())))
    names = row_names(result)
    timed = [s for s in seeds if comparable([by_seed[n][s] for n in names])]
    accs = {n: [by_seed[n][s]["val_acc"] for s in seeds] for n in names}
    summary = {"seeds": seeds, "timed_seeds": timed, "rows": {}}
    for name in names:
        d_dense, d_pick = paired_delta(accs[name], accs["dense"]), paired_delta(accs[name], accs["pick"])
        speedups = [by_seed["dense"][s]["train_seconds"] / by_seed[name][s]["train_seconds"] for s in timed]
        paired = [by_seed[name][s].get("paired_speedup") for s in seeds]
        paired = [v for v in paired if v is not None]
        if name == "dense":
            paired = [1.0] if seeds else []
        elif name == "shorter" and seeds and result.get("shorter_epochs") and result.get("epochs"):
            paired = [result["epochs"] / result["shorter_epochs"]]  # dense's own steps, fewer epochs
        summary["rows"][name] = {
            "acc_pct": spread([100 * a for a in accs[name]]) if seeds else None,
            "speedup": statistics.fmean(speedups) if speedups else None,
            "paired_speedup": statistics.fmean(paired) if paired else None,
            "vs_dense_pts": [d_dense.delta_pts, *d_dense.ci_pts] if name != "dense" and d_dense else None,
            "vs_pick_pts": [d_pick.delta_pts, *d_pick.ci_pts] if name != "pick" and d_pick else None,
        }
    return summary


def _die_with_parent(parent_pid: int) -> None:
    """`--jobs` workers' initializer: a worker ends when confirm.py does (SIGTERM, kill -9), instead of
    training on as an orphan that competes with whatever runs next. Linux's PR_SET_PDEATHSIG through
    ctypes (no library offers it; the stdlib's pool only stops idle workers); elsewhere a no-op, and
    Ctrl-C still reaches the whole process group."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent ended before the guard was set
        os._exit(1)


def _run_in_worker(config: RunConfig) -> dict:
    """One run in a worker process of `--jobs`: one torch thread, no waiting for a quiet machine."""
    import torch

    torch.set_num_threads(1)
    return measured_run(config, _tabular_grid(), 0)


def _in_parallel(args, result: dict, configs: dict, seeds: list[int], epochs: int, deadline: float | None) -> bool:
    """`--jobs N`: the same runs as the loop in `alternatives`, N at a time, in seed order; dense
    trained shorter starts once a dense/pick pair has set its length. Each finished run is saved at
    once. Returns whether --stop-after stopped it."""
    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    todo = [(seed, name) for seed in seeds for name in row_names(result)
            if not any(r["seed"] == seed for r in result["runs"][name])]
    running: dict = {}
    stopped = False
    failed: list[str] = []
    began = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        while todo or running:
            while todo and len(running) < args.jobs and not stopped and not failed:
                if deadline is not None and time.time() >= deadline:
                    stopped = True
                    break
                ready = next((t for t in todo if t[1] != "shorter" or result["shorter_epochs"] is not None
                              or _pair_done(result)), None)
                if ready is None:
                    break  # only dense trained shorter is left, and no pair has set its length yet
                todo.remove(ready)
                seed, name = ready
                if name == "shorter" and result["shorter_epochs"] is None:
                    result["shorter_epochs"] = shorter_length(result, epochs)
                config = (configs["dense"].replace(epochs=result["shorter_epochs"]) if name == "shorter"
                          else configs[name])
                running[pool.submit(_run_in_worker, config.replace(seed=seed))] = ready
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                seed, name = running.pop(future)
                try:
                    row = future.result()
                except (Exception, SystemExit) as exc:  # a failed run, or a worker killed (memory)
                    said = (str(exc).splitlines() or [""])[0] or type(exc).__name__
                    failed.append(f"seed {seed} {name}: {said}")
                    continue  # start nothing new; the running ones finish and are saved
                row = {**row, "jobs": args.jobs, "threads": 1}
                result["runs"][name].append({"seed": seed, "machine": machine_id(), **row})
                result["runs"][name].sort(key=lambda r: r["seed"])
                save(args.json, result)
                paired = f", paired {row['paired_speedup']:.2f}x" if row.get("paired_speedup") else ""
                print(f"seed {seed} {name}: {100 * row['val_acc']:.2f}% {row['train_seconds']:.0f}s{paired}"
                      + (" (contended)" if row["contended"] else ""), flush=True)
    result["wall_seconds"] += time.perf_counter() - began  # elapsed, not the parallel runs' sum
    save(args.json, result)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed, the finished ones are saved: {failed[0]}")
    return stopped


def _pair_done(result: dict) -> bool:
    picks = {r["seed"] for r in result["runs"]["pick"]}
    return any(r["seed"] in picks for r in result["runs"]["dense"])


def alternatives(args) -> None:
    """The pick against dense, dense trained shorter to the pick's time, a paper's setting, and
    `--also`'s setting when given.

    Every finished run is written to `--json` at once, and a run already there is not trained
    again: a benchmark too long for one sitting (a CIFAR-10 subset on a CPU) continues with the
    same command. `--stop-after` stops starting runs after that many seconds."""
    grid = _tabular_grid()
    values, source = paper_setting(args.alternatives, grid)
    best = load_pick(args.run_dir)
    epochs = args.epochs or best.epochs
    data = {k: v for k, v in (("data", args.data), ("train_subset", args.train_subset),
                              ("val_subset", args.val_subset)) if v is not None}
    if data.get("val_subset") == 0:
        data["val_subset"] = None  # the whole validation set
    best = best.replace(epochs=epochs, output=None, **data)
    configs = {"dense": best.replace(sparsity=SparsityConfig()), "pick": best,
               "paper": best.replace(sparsity=SparsityConfig(**values))}
    base = configs["dense"].replace(seed=0).to_dict()
    header = {"epochs": epochs, "base": base, "pick": best.sparsity.to_dict(),
              "paper": {"name": args.alternatives, "source": source, "sparsity": configs["paper"].sparsity.to_dict()}}
    header[ALSO] = None  # so that a results file with an --also row is not continued without it
    if args.also is not None:
        from trilevel.core.cli import load_sparsity

        configs[ALSO] = best.replace(sparsity=load_sparsity(args.also))
        header[ALSO] = {"file": Path(args.also).name, "sparsity": configs[ALSO].sparsity.to_dict()}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
    result = load_or_start(args.json, header)
    result["run_dir"] = str(args.run_dir)  # where the pick came from; not part of what is compared
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    started, deadline = time.time(), (time.time() + args.stop_after if args.stop_after is not None else None)
    stopped = False
    if args.jobs > 1:
        stopped = _in_parallel(args, result, configs, seeds, epochs, deadline)
        seeds = []  # all run above
        if stopped:
            print("stopping: --stop-after reached; the same command continues", flush=True)
    for seed in seeds:
        for name in row_names(result):
            rows = result["runs"][name]
            if any(r["seed"] == seed for r in rows):
                continue
            if deadline is not None and time.time() >= deadline:
                stopped = True
                break
            if name == "shorter" and result["shorter_epochs"] is None:
                result["shorter_epochs"] = shorter_length(result, epochs)
            config = (configs["dense"].replace(epochs=result["shorter_epochs"]) if name == "shorter"
                      else configs[name])
            row = measured_run(config.replace(seed=seed), grid, args.retries)
            rows.append({"seed": seed, "machine": machine_id(), **row})
            result["wall_seconds"] += row["wall_seconds"]
            save(args.json, result)
            print(f"seed {seed} {name}: {100 * row['val_acc']:.2f}% {row['train_seconds']:.0f}s"
                  + (" (contended)" if row["contended"] else ""), flush=True)
        if stopped:
            print("stopping: --stop-after reached; the same command continues", flush=True)
            break
    result["summary"] = summary = summarize(result)
    save(args.json, result)
    print(f"{len(summary['seeds'])} complete seeds ({len(summary['timed_seeds'])} timed on one quiet machine), "
          f"dense trained shorter: {result['shorter_epochs']} of {epochs} epochs")
    for name, row in summary["rows"].items() if summary["seeds"] else ():
        line = f"{name:8s} acc {row['acc_pct']} %"
        if row["speedup"] is not None:
            line += f", speedup {row['speedup']:.2f}x"
        if row.get("paired_speedup") is not None:
            line += f", paired speedup {row['paired_speedup']:.2f}x"
        for key, label in (("vs_dense_pts", "vs dense"), ("vs_pick_pts", "vs pick")):
            if row[key]:
                line += f", {label} {row[key][0]:+.2f} [{row[key][1]:+.2f}, {row[key][2]:+.2f}] pts"
        print(line)
    print(f"this invocation: {time.time() - started:.0f} s")
    if args.json:
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
