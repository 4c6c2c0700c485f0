"""`--epochs auto` against the fixed default, from two stored searches of the same command (issue 27).

For each search (a run directory or its stored copy, `benchmarks/store_run.py`): the proxy length
and, for `auto`, the curve that chose it and what that cost; the search's wall time; the fidelity
check's Spearman correlation between the accuracies the search ranked on and the 2x-longer runs'
(does the ranking at this length agree with longer training?); dense's rise over its last third
(`proxy_still_learning`); the pick. Then the ratio of the two searches' wall times (the target:
`auto` at most 15% slower than the fixed default on digits).

    python benchmarks/proxy_length.py --fixed benchmarks/results/main_command_digits \\
        --auto benchmarks/results/main_command_digits_auto --json benchmarks/results/epochs_auto_digits.json

`--curve ROWS.jsonl ...` asks instead what `--epochs auto` would choose on dense runs already
trained (`proxy_recipe.py` rows of one seed at several `epochs`, e.g. 3 / 6 / 12 / 24 / 30, or a
stored search.json's `epochs_auto` curve, re-judged by today's rule, plus its own dense trial and
the fidelity check's dense run): the
search's own doubling and choice (`search/epochs_auto.run`), each length read from the rows
instead of trained; it names the length it would need next when the rows lack it.

    python benchmarks/proxy_length.py --curve benchmarks/results/proxy_recipe_cifar16px.jsonl \\
        benchmarks/results/proxy_length_cifar16px.jsonl --num-val 10000 --chance 0.1 \\
        --json benchmarks/results/epochs_auto_cifar16px.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trilevel.store.run_store import CurvePoint, EpochsAuto, load_run
from trilevel.reports import summarize
from trilevel.search import epochs_auto


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


class _NotStored(Exception):
    """The doubling needs a length the rows lack."""


def curve_rows(path: Path) -> list[dict]:
    """proxy_recipe.py's rows (JSON lines), or a search.json's dense runs as such rows: its
    `epochs_auto` curve and, with trials.jsonl beside it, the search's own dense trial (its seed, the
    search's epochs) and the fidelity check's dense run (its seed, 2x the epochs): a search with a
    fixed `--epochs` then gives two points of dense's curve for free."""
    text = path.read_text()
    if path.suffix != ".json":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    info = json.loads(text)
    auto = info.get("epochs_auto") or {}
    rows = [_row(auto["seed"], point["epochs"], point["acc"], point["seconds"]) for point in auto.get("curve", [])]
    trials = path.parent / "trials.jsonl"
    if trials.exists():
        dense = [t for t in map(json.loads, filter(str.strip, trials.read_text().splitlines()))
                 if t.get("is_baseline") and t.get("status") == "completed" and t.get("val_acc") is not None]
        for t in dense[:1]:
            rows.append(_row(info.get("seed", 0), info["epochs"], t["val_acc"], t.get("train_seconds") or 0.0))
            fidelity = info.get("fidelity") or {}
            rows += [_row(fidelity.get("seed", 0), fidelity["epochs"], r["acc"], r["seconds"])
                     for r in fidelity.get("runs", []) if r["trial_id"] == t["trial_id"]]
    return rows


def _row(seed: int, epochs: int, acc: float, seconds: float) -> dict:
    """A dense run as proxy_recipe.py writes it (the fields `rechoose` reads)."""
    return {"seed": seed, "status": "completed", "config": {"epochs": epochs}, "val_acc": acc, "train_seconds": seconds}


def rechoose(rows: list[dict], seed: int, max_epochs: int, num_val: int, chance: float | None) -> dict:
    """What `--epochs auto` (max `max_epochs`) chooses on stored dense runs of `seed`: the rows
    (proxy_recipe.py's, any variant) are looked up by their run's `epochs`; completed runs only."""
    by_length: dict[int, dict] = {}
    for row in rows:
        if row["seed"] == seed and row["status"] == "completed":
            length = row["config"]["epochs"]
            if length in by_length and by_length[length]["val_acc"] != row["val_acc"]:  # not the same run again
                raise SystemExit(f"two dense runs of seed {seed} at {length} epochs: pass the rows of one setting "
                                 "(--variant)")
            by_length[length] = row
    record = EpochsAuto(max_epochs, seed)
    missing: list[int] = []

    def measure(epochs: int):
        if epochs not in by_length:
            missing.append(epochs)
            raise _NotStored
        row = by_length[epochs]
        return CurvePoint(epochs, row["val_acc"], row["train_seconds"]), chance, num_val

    try:
        epochs_auto.run(record, measure, save=lambda r: None, say=lambda line: None)
    except _NotStored:
        return {"seed": seed, "max_epochs": max_epochs, "chosen": None, "needs_epochs": missing[0],
                "curve": [p.to_dict() for p in record.curve], "seconds": record.seconds}
    return {"seed": seed, "max_epochs": max_epochs, "chosen": record.chosen, "noise_pts": record.noise_pts,
            "curve": [p.to_dict() for p in record.curve], "seconds": record.seconds,
            "stored_lengths": sorted(by_length)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fixed", type=Path, help="the search with the fixed default --epochs")
    p.add_argument("--auto", type=Path, help="the same command with --epochs auto")
    p.add_argument("--curve", type=Path, nargs="+", help="instead: proxy_recipe.py rows of dense at several lengths, or a search.json")
    p.add_argument("--seed", type=int, help="--curve: the seed the doubling trains (default: a search.json's "
                   "own, else 0)")
    p.add_argument("--max-epochs", type=int, default=30, help="--curve: the search's --max-epochs")
    p.add_argument("--num-val", type=int, help="--curve: validation images (the noise rule needs it)")
    p.add_argument("--chance", type=float, help="--curve: the most frequent validation class's share")
    p.add_argument("--variant", action="append",
                   help="--curve: only proxy_recipe.py rows of this variant (repeatable; default: all)")
    p.add_argument("--json", type=Path, required=True, help="where to write the comparison")
    args = p.parse_args()
    if args.curve:
        stored = [json.loads(path.read_text()) for path in args.curve if path.suffix == ".json"]
        if args.num_val is None:  # a stored search knows its own validation size and seed
            args.num_val = next((info["num_val"] for info in stored if info.get("num_val")), None)
        if args.seed is None:
            args.seed = next(((info.get("epochs_auto") or {}).get("seed", info.get("seed")) for info in stored
                              if (info.get("epochs_auto") or {}).get("seed", info.get("seed")) is not None), 0)
        if args.num_val is None:
            p.error("--curve needs --num-val (proxy_recipe.py rows do not record it)")
        if args.fixed or args.auto:
            p.error("--curve replaces --fixed/--auto")
        rows = [row for path in args.curve for row in curve_rows(path)
                if not args.variant or row.get("variant") in args.variant]
        seeds = sorted({row["seed"] for row in rows})
        if args.seed not in seeds:
            p.error(f"no dense rows of seed {args.seed} in --curve (they hold seeds {seeds})")
        out = rechoose(rows, args.seed, args.max_epochs, args.num_val, args.chance)
        out["rows"] = [str(path) for path in args.curve]
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        curve = ", ".join(f"{c['epochs']}: {100 * c['acc']:.2f}%" for c in out["curve"])
        print(f"--epochs auto on seed {args.seed}: curve {curve} ({out['seconds'] / 60:.1f} min of training); "
              + (f"chooses {out['chosen']} epochs (noise {out['noise_pts']:.2f} points)" if out["chosen"]
                 else f"needs dense at {out['needs_epochs']} epochs next, not stored"))
        return
    if args.fixed is None or args.auto is None:
        p.error("pass --fixed and --auto (two stored searches), or --curve")
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
