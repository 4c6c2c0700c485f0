"""Copy a search's records (no checkpoints, no Ray experiment state) into the repository, so the
figures quoted from it rest on committed files, and save its report as text.

    python benchmarks/store_run.py runs/deit_t-digits-tri-level benchmarks/results/main_command_digits

Copies `search.json`, `trials.jsonl`, the Optuna journal, the MO-ASHA state and the exports (the file
names are the run store's, `trilevel.store.run_store`), then renders `trilevel-report` into
`report.txt` (plain text, 160 columns).
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from trilevel.store.run_store import RECORD_FILES, load_run
from trilevel.reports import render_report, summarize


def copy_records(src: Path, dest: Path) -> list[str]:
    """Copy the record files `src` holds into `dest`, each atomically (a reader never sees half a
    file); returns their names. Both ways: a run into its store, a store into a new run directory."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in RECORD_FILES:
        if (src / name).exists():
            tmp = dest / f".{name}.tmp"
            shutil.copy2(src / name, tmp)
            tmp.replace(dest / name)
            copied.append(name)
    return copied


def store(run_dir: Path, dest: Path) -> list[str]:
    """Copy the record files that exist and render report.txt when the run has trials to report;
    returns the names stored."""
    stored = copy_records(run_dir, dest)
    from rich.console import Console

    from trilevel.core import UserError

    buf = io.StringIO()
    try:
        render_report(summarize(load_run(run_dir)), Console(file=buf, width=160, color_system=None))
    except UserError as exc:  # e.g. no trials yet: the records still travel
        buf.write(f"(no report yet: {exc})\n")
    (dest / "report.txt").write_text(buf.getvalue())
    return [*stored, "report.txt"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args()
    print(f"stored {sorted(store(args.run_dir, args.dest))} in {args.dest}")


if __name__ == "__main__":
    main()
