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
and one of the papers' hand-set settings (`benchmarks/tabular_grid.py` PAPER_SETTINGS). Each gets
its paired difference to dense and to the pick with a 90 % t interval over the seeds
(`trilevel.reports.noise.paired_delta`).
"""

from __future__ import annotations

import argparse
import json
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
    return {"val_acc": m["val_acc"], "train_seconds": m["train_seconds"], "flops_per_image": m["flops_per_image"]}


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
    args = p.parse_args()
    if args.alternatives:
        alternatives(args)
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


def alternatives(args) -> None:
    """The pick against dense, dense trained shorter to the pick's time, and a paper's setting."""
    import importlib.util

    from trilevel.reports.noise import paired_delta

    spec = importlib.util.spec_from_file_location("tabular_grid", Path(__file__).with_name("tabular_grid.py"))
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    if args.alternatives not in grid.PAPER_SETTINGS:
        raise SystemExit(f"unknown paper setting {args.alternatives!r}; one of {sorted(grid.PAPER_SETTINGS)}")
    values, source = grid.PAPER_SETTINGS[args.alternatives]
    best = load_pick(args.run_dir)
    epochs = args.epochs or best.epochs
    best = best.replace(epochs=epochs, output=None)
    configs = {"dense": best.replace(sparsity=SparsityConfig()), "pick": best,
               "paper": best.replace(sparsity=SparsityConfig(**values))}
    started = time.time()
    rows: dict[str, list[dict]] = {name: [] for name in (*configs, "shorter")}
    shorter_epochs = None
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, config in configs.items():
            rows[name].append(run(config.replace(seed=seed)))
        if shorter_epochs is None:  # the pick's measured time, from the first seed's side-by-side pair
            ratio = rows["pick"][0]["train_seconds"] / rows["dense"][0]["train_seconds"]
            shorter_epochs = min(epochs, max(1, round(epochs * ratio)))
        rows["shorter"].append(run(configs["dense"].replace(seed=seed, epochs=shorter_epochs)))
        print(f"seed {seed}: " + " | ".join(f"{n} {100 * r[-1]['val_acc']:.2f}% {r[-1]['train_seconds']:.0f}s"
                                            for n, r in rows.items()), flush=True)
    accs = {n: [r["val_acc"] for r in rs] for n, rs in rows.items()}
    secs = {n: [r["train_seconds"] for r in rs] for n, rs in rows.items()}
    summary = {}
    for name in rows:
        d_dense, d_pick = paired_delta(accs[name], accs["dense"]), paired_delta(accs[name], accs["pick"])
        summary[name] = {
            "acc_pct": spread([100 * a for a in accs[name]]),
            "speedup": statistics.fmean(d / s for d, s in zip(secs["dense"], secs[name])),
            "vs_dense_pts": [d_dense.delta_pts, *d_dense.ci_pts] if name != "dense" else None,
            "vs_pick_pts": [d_pick.delta_pts, *d_pick.ci_pts] if name != "pick" else None,
        }
        print(f"{name:8s} acc {summary[name]['acc_pct']} %, speedup {summary[name]['speedup']:.2f}x"
              + (f", vs dense {d_dense.delta_pts:+.2f} [{d_dense.ci_pts[0]:+.2f}, {d_dense.ci_pts[1]:+.2f}] pts"
                 if name != "dense" else "")
              + (f", vs pick {d_pick.delta_pts:+.2f} [{d_pick.ci_pts[0]:+.2f}, {d_pick.ci_pts[1]:+.2f}] pts"
                 if name != "pick" else ""))
    result = {"run_dir": str(args.run_dir), "epochs": epochs, "shorter_epochs": shorter_epochs,
              "seeds": list(range(args.first_seed, args.first_seed + args.seeds)), "pick": best.sparsity.to_dict(),
              "paper": {"name": args.alternatives, "source": source, "sparsity": configs["paper"].sparsity.to_dict()},
              "runs": rows, "summary": summary, "wall_seconds": time.time() - started}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
