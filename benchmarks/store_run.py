"""Copy a search's records (no checkpoints, no Ray experiment state) into the repository, so the
figures quoted from it rest on committed files, and save its report as text.

    python benchmarks/store_run.py runs/deit_t-digits-tri-level benchmarks/results/main_command_digits

Copies `search.json`, `trials.jsonl`, the Optuna journal, the MO-ASHA state and the exports (the file
names are the run store's, `trilevel.core.run_store`), then renders `trilevel-report` into
`report.txt` (plain text, 160 columns).
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from trilevel.core.run_store import RECORD_FILES, load_run
from trilevel.reports import render_report, summarize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (args.run_dir / name).exists():
            shutil.copy2(args.run_dir / name, args.dest / name)
    from rich.console import Console

    buf = io.StringIO()
    render_report(summarize(load_run(args.run_dir)), Console(file=buf, width=160, color_system=None))
    (args.dest / "report.txt").write_text(buf.getvalue())
    print(f"stored {sorted(f.name for f in args.dest.iterdir())} in {args.dest}")


if __name__ == "__main__":
    main()
