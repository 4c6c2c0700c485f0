"""The search's own overhead: wall time of the trial phase not spent inside trials.

Reads Ray Tune's experiment state in a finished run directory:

    overhead share = 1 - (time spent inside trials) / (trial-phase wall time x trial slots)

"Inside trials" is Ray's `time_total_s` of each trial (model/data set-up, training, evaluation,
checkpoints); the trial phase runs from Tune's start to the last result. Everything else —
actor scheduling, Optuna sampling, MO-ASHA, result/checkpoint handling and our records in the
driver, and any slot left idle — is overhead.

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
    state_file = sorted(args.run_dir.glob("experiment_state-*.json"))[-1]  # Ray's own record
    state = json.loads(state_file.read_text())
    inside = training = 0.0
    end = 0.0
    for _, runtime in state["trial_data"]:
        runtime = json.loads(runtime)
        result = runtime.get("last_result") or {}
        inside += result.get("time_total_s", 0.0)
        training += result.get("train_seconds", 0.0)
        end = max(end, runtime.get("last_result_time") or 0.0)
    phase = end - state["stats"]["start_time"]
    capacity = phase * args.slots
    meta = json.loads((args.run_dir / "search.json").read_text())
    print(f"run {meta['name']}: {len(state['trial_data'])} trials; whole command {meta['wall_seconds'] / 60:.1f} min, "
          f"trial phase {phase / 60:.1f} min x {args.slots:g} slots")
    print(f"inside trials {100 * inside / capacity:.1f}% of the slot time (training steps alone {100 * training / capacity:.1f}%)")
    print(f"search overhead (Ray + Optuna + MO-ASHA + records + idle slots): {100 * (1 - inside / capacity):.1f}%")


if __name__ == "__main__":
    main()
