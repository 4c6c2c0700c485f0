"""Reports: turn a search run directory into what users see and keep.

- `load_run(run_dir)` reads `search.json` + `trials.jsonl` into typed records.
- `pareto_front`, `select_best`, `hypervolume` decide which trials matter and which to recommend.
- `write_outputs(run_dir)` writes pareto.json/.yaml, best.yaml/.json, pareto.png (and .html).
- `render_report(summary)` prints the terminal report; `trilevel-report RUN_DIR` does all of it.
- `LiveProgress` shows a running search (rich view on a terminal, plain lines in logs).
"""

from .live import LiveProgress
from .records import Run, SearchInfo, TrialRecord, load_run, trial_from_dict
from .render import render_report
from .selection import (
    DenseReference,
    Selection,
    dense_reference,
    front_hypervolume,
    hypervolume,
    knee,
    pareto_front,
    select_best,
)
from .summary import Summary, summarize, trial_run_config, write_outputs

__all__ = [
    "DenseReference",
    "LiveProgress",
    "Run",
    "SearchInfo",
    "Selection",
    "Summary",
    "TrialRecord",
    "dense_reference",
    "front_hypervolume",
    "hypervolume",
    "knee",
    "load_run",
    "pareto_front",
    "render_report",
    "select_best",
    "summarize",
    "trial_from_dict",
    "trial_run_config",
    "write_outputs",
]
