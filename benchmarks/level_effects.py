"""Which level costs the least accuracy for its speed? A linear fit over a search's finished trials
(or a `tabular_grid.py` table) that answers issue 24's "if it falls short, which level saturates
first, by measurement".

Accuracy (points) and the log of the speedup are each fitted, by ordinary least squares, as a
linear function of how much each searched level prunes (1 - keep), dense included as the
all-zero point. Per level: accuracy points per unit of pruning and log speed per unit, each with
its classical standard error; where the speed coefficient exceeds 2 standard errors, the points
that level costs per doubling of speed (accuracy coefficient / speed coefficient x ln 2): the
cheaper lever loses fewer points for the same speed. A level whose speed coefficient does not
exceed 2 standard errors buys no measurable speed. Per level also the lowest keep tried against
the space's lower bound (from search.json): a cheap lever already at its bound is saturated, and
only a wider space moves it. The residual sd says how much the additive model leaves unexplained
(compare it with the seed noise the search states).

Speed: a search's paired speedup (measured inside each trial against dense; FLOPs speedup with
`--objective flops`); a grid table holds no paired timing, so its speed is the FLOPs speedup
(expected_train_flops against dense's), and the output says which it used.

    python benchmarks/level_effects.py benchmarks/results/cifar10_16px \\
        --json benchmarks/results/level_effects_cifar16px.json
    python benchmarks/level_effects.py benchmarks/data/grid3_search_digits_18ep.json

The fit itself is the report's (`reports/levels.py`, "Where the speed comes from"); this script
runs it on stored records and grid tables and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def search_rows(run_dir: Path) -> tuple[list[str], list[dict], str, dict]:
    """A run directory's finished full-length trials (reports/levels.py `trial_rows`): (levels, rows
    of {keeps, acc, speed}, the speed's name, each level's lower bound in the space)."""
    from trilevel.reports.levels import speed_name, trial_rows
    from trilevel.store.run_store import load_run

    run = load_run(run_dir)
    levels, rows, bounds = trial_rows(run, run.search.objective)
    return levels, [{"keeps": k, "acc": a, "speed": v} for k, a, v in rows], speed_name(run.search.objective), bounds


def grid_rows(path: Path) -> tuple[list[str], list[dict], str, dict]:
    """A tabular_grid table file: see `grid_rows_from`."""
    return grid_rows_from(json.loads(path.read_text()), str(path))


def grid_rows_from(table: dict, name: str) -> tuple[list[str], list[dict], str, dict]:
    """A tabular_grid table: every configuration's final accuracy on each seed, FLOPs speedup."""
    levels = sorted(table["grid"])
    configs = table["configs"]
    dense = [r for r in configs if all(v == 1.0 for v in r["params"].values())]
    if not dense:
        raise SystemExit(f"level_effects: {name} has no dense configuration to measure speed against")
    dense_flops = dense[0]["expected_train_flops"]
    rows = [{"keeps": {k: float(r["params"][k]) for k in levels}, "acc": 100 * r["val_acc"][-1],
             "speed": dense_flops / r["expected_train_flops"]} for r in configs]
    return levels, rows, "FLOPs speedup", {k: min(v) for k, v in table["grid"].items()}


def effects(levels: list[str], rows: list[dict], speed_name: str, bounds: dict) -> dict:
    """The report's fit (reports/levels.py) over these rows, as JSON-ready data."""
    from trilevel.reports.levels import LevelEffects

    fit = LevelEffects.fit([(r["keeps"], r["acc"], r["speed"]) for r in rows], levels, speed_name, bounds,
                           min_runs=len(levels) + 3)
    if fit is None:
        raise SystemExit(f"level_effects: {len(rows)} finished runs cannot fit {len(levels)} levels "
                         f"(need at least {len(levels) + 3}, each level varied)")
    return fit.to_dict()


def render(result: dict, source: str) -> str:
    lines = [f"{source}: {result['runs']} finished runs; speed = {result['speed']}; accuracy residual sd "
             f"{result['acc_residual_sd']:.2f} points",
             f"{'level':<16}{'points/unit':>14}{'log speed/unit':>17}{'points per 2x':>15}{'lowest keep':>13}"
             f"{'space low':>11}{'alone at lowest':>17}"]
    for k, e in result["levels"].items():
        per2 = "no speed" if e["pts_per_speed_doubling"] is None else f"{e['pts_per_speed_doubling']:+.1f}"
        low = "-" if e["space_low"] is None else f"{e['space_low']:g}"
        lines.append(f"{k:<16}{e['acc_pts_per_unit']:>+8.2f} ±{e['acc_se']:<4.2f}{e['log_speed_per_unit']:>+10.3f} "
                     f"±{e['log_speed_se']:<5.3f}{per2:>15}{e['lowest_keep_tried']:>13.3f}{low:>11}"
                     f"{e['speedup_alone_at_lowest']:>16.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="a search's run directory (or its stored records), or a grid table")
    p.add_argument("--json", type=Path, help="write the fits here")
    args = p.parse_args(argv)
    if args.source.is_dir():
        if not (args.source / "search.json").exists():
            print(f"level_effects: {args.source} has no search.json", file=sys.stderr)
            return 2
        levels, rows, speed_name, bounds = search_rows(args.source)
    elif args.source.is_file():
        levels, rows, speed_name, bounds = grid_rows(args.source)
    else:
        print(f"level_effects: {args.source} does not exist", file=sys.stderr)
        return 2
    result = effects(levels, rows, speed_name, bounds)
    print(render(result, str(args.source)))
    if args.json:
        args.json.write_text(json.dumps({"source": str(args.source), **result}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
