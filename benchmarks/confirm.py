"""Does the configuration a search picked really train faster at equal accuracy?

Trains the dense baseline and the exported best configuration (`best.yaml`) side by side on the
same machine, seeds interleaved (dense s0, best s0, dense s1, ...), for the same number of epochs,
with the same code path as `trilevel-train`. Reports wall-clock training time saved and accuracy
difference with their spread over seeds. Optionally also trains every other Pareto configuration
once and reports proxy fidelity: the Spearman rank correlation between a configuration's accuracy
in the search and after this longer confirmation training.

    python benchmarks/confirm.py runs/deit_t-digits-tri-level --epochs 12 --seeds 3 --pareto
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


from trilevel.core import RunConfig, SparsityConfig, train


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
    args = p.parse_args()

    best = RunConfig.load(args.run_dir / "best.yaml")
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


if __name__ == "__main__":
    main()
