"""Module paths that earlier versions of this package pickled into a run directory.

Why: Ray Tune pickles the search's stopper (the run recorder, with its trial records) into its
experiment state, by module path. A module that moved since (the run store left `trilevel.core` for
`trilevel.store` in the twelfth session) makes that state unreadable, and Ray's resume does not
fail on it: it logs the error and silently starts the experiment afresh, so the trials that were
cut off would be dropped. While a resume reads Ray's state, the old paths name the new modules.

Add a line here whenever a module whose objects reach a pickle (records, statuses, configs, the
recorder, the searcher, the scheduler) moves.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from typing import Iterator

MOVED = {
    "trilevel.core.run_store": "trilevel.store.run_store",
}


@contextmanager
def earlier_module_names() -> Iterator[None]:
    """Inside: `import trilevel.core.run_store` (and every old path in MOVED) gives the module it
    became, so pickles written by earlier versions load. Outside: the old paths are gone again."""
    added = []
    for old, new in MOVED.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
            added.append(old)
    try:
        yield
    finally:
        for old in added:
            sys.modules.pop(old, None)
