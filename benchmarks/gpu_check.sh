#!/usr/bin/env bash
# One prepared GPU check, sized for one H200 in at most ~8 minutes (device time is short: run it
# once, whole). Writes OUT/gpu_check.json (default OUT: benchmarks/results/gpu_check):
#   env          the device, torch and CUDA versions
#   core_deit_t  each level's step speedup against its FLOPs prediction, deit_t at 224 px, bf16
#   core_deit_s  the same for deit_s (benchmarks/bench_core.py, interleaved epochs, synthetic data)
#   loader       the input pipeline's images/s against the step's (benchmarks/loader_vs_step.py)
#   paired       paired speedup of tokens 0.7 idle and beside another process's GPU kernels (issue 23's
#                3% target where the device is shared; benchmarks/paired_speed.py, digits)
#   search       a small digits search at 32 px with fractional GPUs (4 trials per GPU), when Ray
#                and Optuna import there (the device image has neither: carry their wheels, see
#                the device README; otherwise this step says "skipped" and why)
# Each step has its own time limit; one that fails is recorded with its exit code and the others
# still run.
#
#   bash benchmarks/gpu_check.sh [--dry-run] [OUT]
#
# --dry-run: the same steps on the CPU at toy sizes, in about a minute (tests/test_gpu_check.py).
# The package is imported from this checkout (PYTHONPATH), so nothing needs installing there.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
OUT=${1:-benchmarks/results/gpu_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SNAP=$(mktemp -d)
trap 'rm -rf "$SNAP"' EXIT
mkdir -p "$SNAP/trilevel"
for d in core search spaces reports; do ln -s "$PWD/$d" "$SNAP/trilevel/$d"; done
export PYTHONPATH="$SNAP${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
STEPS="$OUT/steps.jsonl"
: >"$STEPS"

step() {  # step NAME LIMIT_SECONDS COMMAND...: run it, log it, record its status and seconds
  local name=$1 limit=$(($2 * SCALE)); shift 2
  local start=$SECONDS rc
  echo "== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  tail -n 15 "$OUT/$name.log"
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - start))}" >>"$STEPS"
}

if [[ $DRY == 1 ]]; then
  DEVICE=cpu; SIZE=16; IMAGES=32; BATCH=16; ROUNDS=1; MODEL_S=deit_t; SUBSET=64; BATCHES=2
  BUSY_KIND=cpu; PAIRED_EPOCHS=1; PAIRED_QUIET=--no-quiet-check; SCALE=4  # a shared CPU: generous limits
  SEARCH=(--model vit_t --model-kwargs depth=2 embed_dim=64 num_heads=4 --img-size 16 --budget 2 --epochs 3
          --batch-size 32 --lr 0.003 --device cpu --cpus-per-trial 1)
else
  DEVICE=cuda; SIZE=224; IMAGES=8192; BATCH=256; ROUNDS=3; MODEL_S=deit_s; SUBSET=4096; BATCHES=12
  BUSY_KIND=gpu; PAIRED_EPOCHS=9; PAIRED_QUIET=; SCALE=1
  SEARCH=(--model deit_t --img-size 32 --budget 8 --epochs 3 --device cuda --gpus-per-trial 0.25 --cpus-per-trial 2)
fi

step env 60 "$PY" -c "
import json, platform, torch
cuda = torch.cuda.is_available()
json.dump({'torch': torch.__version__, 'cuda': torch.version.cuda, 'device': torch.cuda.get_device_name(0) if cuda
           else platform.processor() or 'cpu', 'dry_run': $DRY}, open('$OUT/env.json', 'w'))
print(open('$OUT/env.json').read())"
step core_deit_t 150 "$PY" benchmarks/bench_core.py --model deit_t --img-size $SIZE --images $IMAGES \
  --batch-size $BATCH --rounds $ROUNDS --device $DEVICE --json "$OUT/core_deit_t.json"
step core_deit_s 180 "$PY" benchmarks/bench_core.py --model $MODEL_S --img-size $SIZE --images $((IMAGES / 2)) \
  --batch-size $BATCH --rounds $ROUNDS --device $DEVICE --json "$OUT/core_deit_s.json"
step loader 90 "$PY" benchmarks/loader_vs_step.py --dataset digits --device $DEVICE --batch-size $BATCH \
  --train-subset $SUBSET --batches $BATCHES --workers 0 4 --out "$OUT/loader.json"
# Paired speed idle and beside another process's GPU kernels (issue 23's 3% target, on a device the
# run does not own alone): dense and one sparse setting, digits, trilevel-train.
step paired 240 "$PY" benchmarks/paired_speed.py --json "$OUT/paired.json" --configs dense "tokens 0.7" \
  --busy 1 --busy-kind $BUSY_KIND --train-flags="--device $DEVICE --epochs $PAIRED_EPOCHS" $PAIRED_QUIET
if "$PY" -c "import ray, optuna" 2>/dev/null; then
  step search 150 "$PY" -c "import sys; from trilevel.search.cli import main; sys.exit(main(sys.argv[1:]))" \
    "${SEARCH[@]}" --baseline-seeds 1 --finalists 0 --train-shorter none --fidelity off --no-live \
    --output "$OUT/runs" --name search
else
  echo '{"step": "search", "rc": null, "seconds": 0, "skipped": "ray or optuna does not import here: carry their wheels"}' >>"$STEPS"
fi

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
result = {"steps": steps}
for name in ("env", "core_deit_t", "core_deit_s", "loader", "paired"):
    path = out / f"{name}.json"
    result[name] = json.loads(path.read_text()) if path.exists() else None
search = out / "runs" / "search" / "search.json"
if search.exists():
    meta = json.loads(search.read_text())
    trials = [json.loads(l) for l in (out / "runs" / "search" / "trials.jsonl").read_text().splitlines() if l.strip()]
    result["search"] = {"status": meta.get("status"), "wall_seconds": meta.get("wall_seconds"),
                        "trials": [{k: t.get(k) for k in ("params", "status", "val_acc", "paired_speedup",
                                                          "wall_speedup", "train_seconds")} for t in trials]}
(out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
failed = [s["step"] for s in steps if s.get("rc") not in (0, None)]
print(f"wrote {out / 'gpu_check.json'}; failed steps: {', '.join(failed) or 'none'}")
sys.exit(1 if failed else 0)
EOF
