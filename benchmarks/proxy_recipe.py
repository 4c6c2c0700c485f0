"""Does the dense proxy learn? Dense accuracy per epoch for recipe variants over seeds.

The search ranks configurations by their accuracy after a short proxy run, so the dense proxy must
learn clearly and the same way on every seed. This trains dense `trilevel-train` runs for each
named variant (RunConfig overrides) and seed, records the validation accuracy after every epoch,
and prints mean +- sd per variant at each epoch. Results are appended to a JSON-lines file, one line
per finished run, and runs already in it are skipped: the script resumes across sessions.

    python benchmarks/proxy_recipe.py --variants default,no_aug --seeds 0 1 2 \
        --out benchmarks/results/proxy_recipe_digits.jsonl

Accuracy is what is measured, so two runs at a time (one thread each) are fine on 2 cores; the
seconds recorded are then not comparable with BENCHMARKS.md's timing tables.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
from pathlib import Path

# Named variants: RunConfig overrides on top of --base. Each name says what it changes.
VARIANTS: dict[str, dict] = {
    "default": {},
}


def _train(job: tuple[str, dict, int]) -> dict:
    import torch

    from trilevel.core import RunConfig, train

    name, overrides, seed = job
    torch.set_num_threads(1)
    config = RunConfig.from_dict(_with_seed(overrides, seed))
    accs: list[float] = []
    metrics = train(config, callback=lambda m, t: accs.append(m["val_acc"]))
    return {"variant": name, "seed": seed, "overrides": overrides, "status": metrics["status"],
            "val_acc": metrics["val_acc"], "per_epoch": accs, "train_seconds": metrics["train_seconds"],
            "active_per_epoch": [h["active_examples"] for h in metrics["history"]],
            "num_train": metrics["num_train"], "config": metrics["config"]}


def _with_seed(overrides: dict, seed: int) -> dict:
    """RunConfig fields for one run of a variant."""
    return {**overrides, "seed": seed, "output": None}


LOGREG_C = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.1, 1.0)


def linear_baseline(overrides: dict, seed: int) -> dict:
    """Logistic regression on the raw pixels of the same split (train/val as the run would load
    them, at the run's image size, without augmentation): what the ViT proxy must at least match."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from trilevel.core import RunConfig
    from trilevel.core.data import build_datasets, dataset_info

    config = RunConfig.from_dict(_with_seed(overrides, seed)).resolved()
    info = dataset_info(config.dataset, config.data)
    train, val, info = build_datasets(
        config.dataset, config.data, img_size=config.img_size or info.default_img_size, seed=config.data_seed,
        val_fraction=config.val_fraction, train_subset=config.train_subset, val_subset=config.val_subset,
        augment=False)

    def arrays(ds):
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        return np.stack([x.numpy().ravel() for x in xs]), np.asarray(ys)

    (xt, yt), (xv, yv) = arrays(train), arrays(val)
    scaler = StandardScaler().fit(xt)
    xt, xv = scaler.transform(xt), scaler.transform(xv)
    # The best regularisation chosen on the validation set itself: an optimistic, hence strict, bar.
    scores = {c: float(LogisticRegression(max_iter=3000, C=c).fit(xt, yt).score(xv, yv)) for c in LOGREG_C}
    best = max(scores, key=scores.get)
    return {"variant": "logistic_regression_raw_pixels", "seed": seed, "overrides": overrides,
            "val_acc": scores[best], "C": best, "scores": scores, "num_train": len(yt), "num_val": len(yv)}


def _key(row: dict) -> str:
    return json.dumps([row["variant"], row["overrides"], row["seed"]], sort_keys=True)


def seed_sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(rows: list[dict]) -> str:
    lines = []
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    for name, runs in by_variant.items():
        if not all(r.get("per_epoch") for r in runs):  # a baseline without epochs
            accs = [100 * r["val_acc"] for r in runs]
            lines.append(f"{name:28s} n={len(runs)}  {statistics.fmean(accs):.1f}±{seed_sd(accs):.1f}")
            continue
        epochs = min(len(r["per_epoch"]) for r in runs)
        cells = []
        for e in range(epochs):
            accs = [100 * r["per_epoch"][e] for r in runs]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(f"{statistics.fmean(accs):.1f}±{sd:.1f}")
        lines.append(f"{name:28s} n={len(runs)}  " + "  ".join(cells))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="default", help="comma-separated names, or JSON {name: overrides}")
    p.add_argument("--base", default="{}", help="JSON RunConfig overrides shared by every variant")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--linear", action="store_true",
                   help="also fit logistic regression on the raw pixels of each seed's split")
    args = p.parse_args()

    base = json.loads(args.base)
    if args.variants.lstrip().startswith("{"):
        variants = json.loads(args.variants)
    else:
        variants = {n: VARIANTS[n] for n in args.variants.split(",")}
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[_key(row)] = row
    jobs = []
    for name, overrides in variants.items():
        for seed in args.seeds:
            job = (name, {**base, **overrides}, seed)
            if _key({"variant": name, "overrides": job[1], "seed": seed}) not in done:
                jobs.append(job)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with mp.get_context("spawn").Pool(args.jobs) as pool, args.out.open("a") as fh:
        for row in pool.imap_unordered(_train, jobs):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(f"{row['variant']} seed {row['seed']}: " +
                  " ".join(f"{100 * a:.1f}" for a in row["per_epoch"]), flush=True)
    if args.linear:
        with args.out.open("a") as fh:
            for seed in args.seeds:
                row = linear_baseline(base, seed)
                fh.write(json.dumps(row) + "\n")
                print(f"logistic regression on raw pixels, seed {seed}: {100 * row['val_acc']:.1f}% "
                      f"({row['num_train']} train / {row['num_val']} val)", flush=True)
    rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    wanted = set(variants)
    if args.linear:
        wanted.add("logistic_regression_raw_pixels")
    print(summarize([r for r in rows if r["variant"] in wanted]))


if __name__ == "__main__":
    sys.exit(main())
