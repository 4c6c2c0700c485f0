"""Reports: turn a search run directory into what users see and keep.

- `load_run(run_dir)` reads `search.json` + `trials.jsonl` into typed records (the run store,
  `trilevel.store.run_store`, re-exported here).
- `pareto_front`, `select_best`, `hypervolume` decide which trials matter and which to recommend.
- `write_outputs(run_dir)` writes pareto.json/.yaml, best.yaml/.json, pareto.png (and .html).
- `render_report(summary)` prints the terminal report; `trilevel-report RUN_DIR` does all of it.
- `LiveProgress` shows a running search (rich view on a terminal, plain lines in logs).
"""

from trilevel.core.lazy import lazy_exports
from trilevel.store.run_store import Run, SearchInfo, TrialRecord, load_run

# Imported on first use: these load rich, numpy and matplotlib (see trilevel/core/lazy.py).
__getattr__ = lazy_exports(__name__, {
    "LiveProgress": "live", "render_report": "render",
    "DenseReference": "selection", "Selection": "selection", "dense_reference": "selection",
    "front_hypervolume": "selection", "hypervolume": "selection", "knee": "selection",
    "pareto_front": "selection", "select_best": "selection", "Summary": "summary",
    "summarize": "summary", "trial_run_config": "summary", "write_outputs": "summary",
})

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
    "trial_run_config",
    "write_outputs",
]
