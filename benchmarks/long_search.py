"""A search longer than one sitting: run `trilevel-search` while its records are copied into a
store (e.g. the repository) every few minutes, and continue it next time from that store alone.

    python benchmarks/long_search.py --store benchmarks/results/cifar10_16px \\
        --run-dir /work/runs/cifar10_16px --every 600 -- \\
        --model deit_t --budget 40 --dataset folder --data CIFAR10_DIR --img-size 16 ...

What it does each time it is started:
- the run directory holds a search: `--resume` it (Ray's state and checkpoints, if still there,
  continue the running trials where they stopped);
- else the store holds one: copy the store's record files into the run directory and `--resume`
  from them alone (another machine, a later session: finished trials are kept, unfinished ones
  train again from their first epoch; `trilevel.store.run_store.RECORD_FILES`);
- else start the search.
While it runs, and once more when it ends, the record files and a plain-text report are copied
into the store (`store_run.store`). Ctrl-C / SIGTERM to this script stop the search gracefully
(it exits 130, resumable) and store its records first.

`--snapshot DIR` runs the search on a copy of the package taken at start (PYTHONPATH, so Ray's
workers import it too): a developer can edit the working tree while a long search runs.

Written by hand: a loop around the search's own resume; nothing here decides anything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_run import copy_records, store  # noqa: E402

from trilevel.store.run_store import SEARCH_FILE  # noqa: E402

PACKAGES = {"core": "core", "store": "store", "search": "search", "spaces": "spaces", "reports": "reports"}  # pyproject's package-dir


def prepare(run_dir: Path, store_dir: Path) -> bool:
    """Make `run_dir` resumable from the store when it holds nothing; True when it is a resume."""
    if (run_dir / SEARCH_FILE).exists():
        return True
    if (store_dir / SEARCH_FILE).exists():
        copy_records(store_dir, run_dir)
        print(f"long_search: continuing from the records in {store_dir}", flush=True)
        return True
    return False


def snapshot(dest: Path) -> Path:
    """Copy the package's folders into `dest/trilevel/...`, importable through PYTHONPATH."""
    root = Path(__file__).resolve().parent.parent
    if dest.exists():
        shutil.rmtree(dest)
    for name, folder in PACKAGES.items():
        shutil.copytree(root / folder, dest / "trilevel" / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="where the records are copied (and resumed from)")
    p.add_argument("--run-dir", type=Path, required=True, help="the search's run directory (checkpoints, Ray state)")
    p.add_argument("--every", type=float, default=600, help="seconds between copies")
    p.add_argument("--snapshot", type=Path, help="run the search on a copy of the package made here")
    p.add_argument("search_args", nargs=argparse.REMAINDER, help="-- then trilevel-search's flags")
    args = p.parse_args()
    extra = [a for a in args.search_args if a != "--"]
    if any(a in ("--output", "--name", "--resume") for a in extra):
        p.error("--output, --name and --resume come from --run-dir and the store; leave them out")
    resume = prepare(args.run_dir, args.store)
    cmd = [str(Path(sys.executable).parent / "trilevel-search"), *extra, "--output", str(args.run_dir.parent),
           "--name", args.run_dir.name, *(["--resume"] if resume else [])]
    env = dict(os.environ)
    if args.snapshot is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snapshot(args.snapshot)), env.get("PYTHONPATH")]))
    print("long_search:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, env=env)

    def forward(signum, frame):  # the search stops gracefully on SIGINT and stays resumable
        proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    last = time.time()
    while proc.poll() is None:
        time.sleep(1)
        if time.time() - last >= args.every and (args.run_dir / SEARCH_FILE).exists():
            store(args.run_dir, args.store)
            last = time.time()
    if (args.run_dir / SEARCH_FILE).exists():
        names = store(args.run_dir, args.store)
        print(f"long_search: stored {', '.join(sorted(names))} in {args.store}", flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
