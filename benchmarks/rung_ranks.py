"""How well does a configuration's accuracy at epoch e rank it by its final accuracy?

MO-ASHA's first rung compares configurations after `grace` epochs; it stops the right ones only
if early accuracy orders configurations as the full run would. On a grid table
(`tabular_grid.py`, every configuration trained to the end, so no survivor bias) this prints, per
epoch and seed, the Spearman and Kendall rank correlation of epoch-e accuracy with final accuracy
over all configurations, the dense row's accuracy, and, when the table has two or more seeds, the
ceiling no rung can beat: the rank correlation of the final accuracies of two seeds.

    python benchmarks/rung_ranks.py benchmarks/data/grid3_search_digits.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

from scipy.stats import kendalltau, spearmanr


def curves_by_seed(table: dict) -> dict[int, dict[tuple, list[float]]]:
    """seed -> configuration key -> per-epoch validation accuracy (complete seeds only)."""
    names = list(table["grid"])
    default_seed = table["proxy"].get("seed", 0)
    out: dict[int, dict[tuple, list[float]]] = {}
    for row in table["configs"]:
        key = tuple(row["params"][n] for n in names)
        out.setdefault(row.get("seed", default_seed), {})[key] = row["val_acc"]
    size = len(list(itertools.product(*table["grid"].values())))
    return {seed: curves for seed, curves in out.items() if len(curves) == size}


def rank_table(table: dict) -> dict:
    seeds = curves_by_seed(table)
    if not seeds:
        raise SystemExit("no seed of the table is complete yet")
    dense = tuple(1.0 for _ in table["grid"])
    epochs = len(next(iter(next(iter(seeds.values())).values())))
    rows = []
    for e in range(1, epochs + 1):
        per_seed = {}
        for seed, curves in seeds.items():
            keys = sorted(curves)
            early = [curves[k][e - 1] for k in keys]
            final = [curves[k][-1] for k in keys]
            per_seed[seed] = {
                "spearman": float(spearmanr(early, final)[0]), "kendall": float(kendalltau(early, final)[0]),
                "dense_acc": curves[dense][e - 1], "mean_acc": statistics.fmean(early),
            }
        rows.append({"epoch": e, "seeds": per_seed})
    ceiling = []
    for a, b in itertools.combinations(sorted(seeds), 2):
        keys = sorted(seeds[a])
        ceiling.append(float(spearmanr([seeds[a][k][-1] for k in keys], [seeds[b][k][-1] for k in keys])[0]))
    return {"seeds": sorted(seeds), "configs": len(next(iter(seeds.values()))), "epochs": rows,
            "seed_ceiling_spearman": ceiling}


def markdown(result: dict) -> str:
    lines = ["| epoch | Spearman with final (per seed) | Kendall (per seed) | dense acc (%) | mean acc over configs (%) |",
             "|---|---|---|---|---|"]
    for row in result["epochs"]:
        s = row["seeds"]
        fmt = lambda key, scale=1, digits=2: ", ".join(f"{scale * s[k][key]:.{digits}f}" for k in sorted(s))
        lines.append(f"| {row['epoch']} | {fmt('spearman')} | {fmt('kendall')} | {fmt('dense_acc', 100, 1)} "
                     f"| {fmt('mean_acc', 100, 1)} |")
    if result["seed_ceiling_spearman"]:
        lines.append("")
        lines.append("Final accuracy, seed against seed (the ceiling for any rung): Spearman "
                     + ", ".join(f"{c:.2f}" for c in result["seed_ceiling_spearman"]))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("table", type=Path)
    p.add_argument("--out", type=Path, help="also write the result as JSON")
    args = p.parse_args()
    result = rank_table(json.loads(args.table.read_text()))
    print(f"{result['configs']} configurations, seeds {result['seeds']}")
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
