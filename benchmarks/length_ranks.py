"""Does a proxy's ranking hold at twice its length? Grid tables of the same configurations trained
at several proxy lengths, compared (issue 27: `--epochs auto` against the fixed default).

Each table is `tabular_grid.py` run with another `--epochs` (same grid, same proxy otherwise); a
configuration's accuracy is its final epoch's, on each seed. For every length L whose double 2L
is also stored, on each seed both tables hold: the Spearman rank correlation over the shared
configurations of accuracy at L with accuracy at 2L (does the ranking a search makes at L agree
with longer training?). For every pair of lengths against the longest one stored, the same
correlation (a common reference, so two proxy lengths are compared on the same yardstick). And,
at each length with two or more seeds, the seed-against-seed correlation: how far one seed's
ranking holds on a fresh one. It is the ceiling for a comparison across seeds; the same seed at L
and 2L shares its initialisation and data order, so its correlation may exceed it. A
correlation's 90% interval is Fisher's (z = atanh(r), se = 1.03 / sqrt(n - 3), the
Fieller-Hartley-Pearson rule for Spearman), given only from 10 configurations up and for |r| < 1
(the normal approximation fails below, and collapses at 1).

The tables must train the same thing but for their length: the same grid, and the same proxy once
`epochs` is set aside (dataset, model, recipe: `recipe: auto` turns into the deit recipe above 30
epochs, `core/recipes.py`, which would compare two recipes rather than two lengths).

    python benchmarks/length_ranks.py benchmarks/data/grid3_search_digits.json \\
        benchmarks/data/grid3_search_digits_18ep.json ... --json benchmarks/results/length_ranks_digits.json

Written by hand: a few rank correlations over stored tables (scipy computes them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

from scipy.stats import spearmanr

Z90 = 1.6449


def finals(table: dict) -> dict[int, dict[tuple, float]]:
    """seed -> configuration (its params, order-free) -> final validation accuracy."""
    default_seed = table["proxy"].get("seed", 0)
    out: dict[int, dict[tuple, float]] = {}
    for row in table["configs"]:
        key = tuple(sorted(row["params"].items()))
        out.setdefault(row.get("seed", default_seed), {})[key] = row["val_acc"][-1]
    return out


def correlation(a: dict[tuple, float], b: dict[tuple, float]) -> dict | None:
    """Spearman over the configurations both hold, with its 90% interval; None under 4 shared."""
    keys = sorted(set(a) & set(b))
    if len(keys) < 4:
        return None
    rho = float(spearmanr([a[k] for k in keys], [b[k] for k in keys]).statistic)
    if math.isnan(rho):
        return None
    ci = None
    if len(keys) >= 10 and abs(rho) < 1:
        z, se = math.atanh(rho), 1.03 / math.sqrt(len(keys) - 3)
        ci = [round(math.tanh(z - Z90 * se), 4), round(math.tanh(z + Z90 * se), 4)]
    return {"spearman": round(rho, 4), "ci90": ci, "configurations": len(keys)}


def _training(proxy: dict) -> dict:
    """What a table's proxy trains apart from its length: completed with the run config's
    defaults (a field added since an older table was made compares at its default), as
    tabular_grid.same_training does; the loader's worker count aside."""
    from trilevel.core.config import RunConfig

    out = RunConfig.from_dict({**proxy, "sparsity": {}}).resolved().to_dict()
    for key in ("epochs", "workers"):
        out.pop(key, None)
    return out


def compare(tables: list[dict]) -> dict:
    by_length: dict[int, dict[int, dict[tuple, float]]] = {}
    for table in tables:
        epochs = table["proxy"]["epochs"]
        if epochs in by_length:
            raise SystemExit(f"two tables at {epochs} epochs: pass one per length")
        by_length[epochs] = finals(table)
    grids = {json.dumps(t["grid"], sort_keys=True) for t in tables}
    if len(grids) != 1:
        raise SystemExit("the tables hold different grids: compare tables of the same configurations")
    proxies = {json.dumps(_training(t["proxy"]), sort_keys=True) for t in tables}
    if len(proxies) != 1:
        raise SystemExit("the tables train different proxies (beyond their epochs): compare one proxy's lengths")
    lengths = sorted(by_length)
    longest = lengths[-1]
    out: dict = {"lengths": lengths, "dense": {}, "doubling": [], "against_longest": [], "seed_ceiling": []}
    dense = tuple(sorted({"example_keep": 1.0, "token_keep": 1.0, "attention_keep": 1.0}.items()))
    for length in lengths:
        out["dense"][str(length)] = {str(s): acc[dense] for s, acc in sorted(by_length[length].items()) if dense in acc}
        seeds = sorted(by_length[length])
        for s1, s2 in itertools.combinations(seeds, 2):
            c = correlation(by_length[length][s1], by_length[length][s2])
            if c is not None:
                out["seed_ceiling"].append({"epochs": length, "seeds": [s1, s2], **c})
    for length in lengths:
        pairs = [("doubling", 2 * length)] if 2 * length in by_length else []
        pairs += [("against_longest", longest)] if length != longest else []
        for kind, other in pairs:
            for seed in sorted(set(by_length[length]) & set(by_length[other])):
                c = correlation(by_length[length][seed], by_length[other][seed])
                if c is not None:
                    out[kind].append({"epochs": length, "check_epochs": other, "seed": seed, **c})
    return out


def render(result: dict) -> str:
    lines = [f"lengths: {result['lengths']}",
             "dense: " + "; ".join(f"{L} ep: " + ", ".join(f"seed {s} {100 * a:.1f}%" for s, a in d.items())
                                   for L, d in result["dense"].items())]
    for kind, title in (("doubling", "at L against 2L"), ("against_longest", "at L against the longest"),
                        ("seed_ceiling", "seed against seed (the ceiling)")):
        lines.append(f"Spearman {title}:")
        for row in result[kind]:
            what = (f"{row['epochs']} ep, seeds {row['seeds'][0]}/{row['seeds'][1]}" if kind == "seed_ceiling"
                    else f"{row['epochs']} vs {row['check_epochs']} ep, seed {row['seed']}")
            ci = f" [{row['ci90'][0]:+.2f}, {row['ci90'][1]:+.2f}]" if row["ci90"] else ""
            lines.append(f"  {what}: {row['spearman']:+.2f}{ci} over {row['configurations']} configurations")
        if not result[kind]:
            lines.append("  (no pair stored)")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", type=Path, nargs="+", help="grid tables (tabular_grid.py), one per --epochs")
    p.add_argument("--json", type=Path, help="also write the comparison here")
    args = p.parse_args()
    result = compare([json.loads(path.read_text()) for path in args.tables])
    result["tables"] = [str(path) for path in args.tables]
    print(render(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
