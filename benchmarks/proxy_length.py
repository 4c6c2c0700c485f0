"""`--epochs auto` against the fixed default, from two stored searches of the same command (issue 27).

For each search (a run directory or its stored copy, `benchmarks/store_run.py`): the proxy length
and, for `auto`, the curve that chose it and what that cost; the search's wall time; the fidelity
check's Spearman correlation between the accuracies the search ranked on and the 2x-longer runs'
(does the ranking at this length agree with longer training?); dense's rise over its last third
(`proxy_still_learning`); the pick. Then the ratio of the two searches' wall times (the target:
`auto` at most 15% slower than the fixed default on digits).

    python benchmarks/proxy_length.py --fixed benchmarks/results/main_command_digits \\
        --auto benchmarks/results/main_command_digits_auto --json benchmarks/results/epochs_auto_digits.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trilevel.store.run_store import load_run
from trilevel.reports import summarize


def describe(run_dir: Path) -> dict:
    run = load_run(run_dir)
    summary = summarize(run)
    search = run.search
    auto = search.epochs_auto
    fidelity = summary.fidelity
    pick = summary.selection.trial
    delta = search.finalist_deltas.get(pick.trial_id) if pick is not None else None
    return {
        "run": str(run_dir),
        "command": search.command,
        "epochs": search.epochs,
        "epochs_auto": auto.to_dict() if auto is not None else None,
        "wall_seconds": search.wall_seconds,
        "trial_train_seconds": sum(t.train_seconds or 0.0 for t in run.trials),
        "trials": len(run.trials),
        "dense_accs": search.baseline_accs,
        "resolution_pts": search.resolution_pts,
        "proxy_still_learning": summary.climb.to_dict() if summary.climb is not None else None,
        "fidelity": None if fidelity is None else {
            "epochs": fidelity.check.epochs, "configurations": len(fidelity.check.runs),
            "skipped": fidelity.check.skipped, "spearman": fidelity.spearman, "pick_holds": fidelity.holds},
        "pick": None if pick is None else {
            "trial_id": pick.trial_id, "example_keep": pick.config.example_keep,
            "token_keep": pick.config.token_keep, "attention_keep": pick.config.attention_keep,
            "paired_speedup": pick.speedup, "wall_speedup": pick.wall_speedup, "mean_acc": pick.mean_acc,
            "delta_pts": None if delta is None else delta.get("delta_pts"),
            "delta_ci_pts": None if delta is None else delta.get("delta_ci_pts")},
        "selection": summary.selection.kind,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fixed", type=Path, required=True, help="the search with the fixed default --epochs")
    p.add_argument("--auto", type=Path, required=True, help="the same command with --epochs auto")
    p.add_argument("--json", type=Path, required=True, help="where to write the comparison")
    args = p.parse_args()
    fixed, auto = describe(args.fixed), describe(args.auto)
    out = {"fixed": fixed, "auto": auto,
           "wall_ratio_auto_over_fixed": (auto["wall_seconds"] / fixed["wall_seconds"]
                                          if auto["wall_seconds"] and fixed["wall_seconds"] else None)}
    args.json.write_text(json.dumps(out, indent=2))
    for name, r in (("fixed", fixed), ("auto", auto)):
        curve = r["epochs_auto"]
        print(f"{name}: {r['epochs']} epochs"
              + (f" (curve {[(c['epochs'], round(100 * c['acc'], 1)) for c in curve['curve']]}, "
                 f"{curve['seconds'] / 60:.1f} min)" if curve else "")
              + f", wall {r['wall_seconds'] / 60:.1f} min, fidelity spearman {r['fidelity'] and r['fidelity']['spearman']}"
              f", climb {r['proxy_still_learning']}, pick {r['pick']}")
    if out["wall_ratio_auto_over_fixed"]:
        print(f"auto / fixed wall: {out['wall_ratio_auto_over_fixed']:.3f}")


if __name__ == "__main__":
    main()
