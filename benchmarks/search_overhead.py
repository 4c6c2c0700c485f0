"""The search's own overhead: wall time of the trial phase not spent inside trials.

Reads a finished run directory (`trials.jsonl`, `search.json`):

    overhead share = 1 - (time spent inside trials) / (trial-phase wall time x trial slots)

"Inside trials" is Ray's `time_total_s` of each trial (model/data set-up, training, evaluation,
checkpoints); everything else in `Tuner.fit` — actor scheduling, Optuna sampling, MO-ASHA, result
and checkpoint handling and our records in the driver — is overhead, and so is a slot left idle
(e.g. the tail of the budget). Ray start-up and the report are shown apart from it.

    python benchmarks/search_overhead.py runs/deit_t-digits-tri-level --slots 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--slots", type=float, default=2, help="trials that could run at once (concurrency)")
    args = p.parse_args()
    meta = json.loads((args.run_dir / "search.json").read_text())
    records = [json.loads(line) for line in (args.run_dir / "trials.jsonl").read_text().splitlines() if line]
    inside = sum(r.get("trial_seconds") or 0.0 for r in records)
    training = sum(r.get("train_seconds") or 0.0 for r in records)
    phase = float(meta["trials_wall_seconds"])
    capacity = phase * args.slots
    print(f"run {meta['name']}: {len(records)} trials, {sum(r['epochs'] for r in records)} epochs, "
          f"search wall {float(meta['wall_seconds']) / 60:.1f} min (trial phase {phase / 60:.1f} min), {args.slots:g} slots")
    print(f"inside trials {100 * inside / capacity:.1f}% of trial-phase slot time "
          f"(of which training steps {100 * training / capacity:.1f}%)")
    print(f"search overhead (Ray + Optuna + MO-ASHA + records + idle slots): {100 * (1 - inside / capacity):.1f}%")


if __name__ == "__main__":
    main()
