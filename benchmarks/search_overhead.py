"""The search's own overhead: wall time not spent inside trials, as a share of the search.

Reads a finished run directory (Ray's per-trial `result.json`, our `search.json`):

    overhead share = 1 - (time spent inside trials) / (wall time x trial slots)

"Inside trials" is Ray's `time_total_s` of each trial (model/data set-up, training, evaluation,
checkpoints); everything else — Ray start-up, actor scheduling, Optuna sampling, MO-ASHA, result
and checkpoint handling in the driver, reports — is overhead, and so is a slot left idle because
the search could not keep both busy (e.g. the tail of the budget).

    python benchmarks/search_overhead.py runs/deit_t-digits-tri-level --slots 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def trial_seconds(run_dir: Path) -> tuple[float, float, int]:
    """(sum of time inside trials, sum of measured training seconds, number of trials)."""
    inside = training = 0.0
    count = 0
    for result in run_dir.rglob("result.json"):
        lines = [line for line in result.read_text().splitlines() if line.strip()]
        if not lines:
            continue
        last = json.loads(lines[-1])
        inside += float(last.get("time_total_s", 0.0))
        training += float(last.get("train_seconds", 0.0))
        count += 1
    return inside, training, count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--slots", type=float, default=2, help="trials that could run at once (concurrency)")
    args = p.parse_args()
    meta = json.loads((args.run_dir / "search.json").read_text())
    wall = float(meta["wall_seconds"])
    inside, training, count = trial_seconds(args.run_dir)
    capacity = wall * args.slots
    print(f"run {meta['name']}: {count} trials, wall {wall / 60:.1f} min, {args.slots:g} slots")
    print(f"inside trials {inside / 60:.1f} slot-min (training {training / 60:.1f} slot-min)")
    print(f"overhead share {100 * (1 - inside / capacity):.1f}% of wall x slots "
          f"(training share {100 * training / capacity:.1f}%)")


if __name__ == "__main__":
    main()
