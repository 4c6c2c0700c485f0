"""Search: Ray Tune + Optuna samplers + multi-objective ASHA over a tri-level sparsity space."""

from trilevel.core.lazy import lazy_exports

from .constants import SAMPLERS

# Imported on first use: these load Ray, Optuna and torch (see trilevel/core/lazy.py).
__getattr__ = lazy_exports(__name__, {
    "MOASHA": "moasha", "MOASHAScheduler": "moasha", "SearchOptions": "options", "SearchResult": "runner",
    "run_search": "runner", "StudySearcher": "searcher", "make_sampler": "searcher", "register_sampler": "searcher",
    "list_samplers": "searcher",
})

__all__ = ["MOASHA", "MOASHAScheduler", "SAMPLERS", "SearchOptions", "SearchResult", "StudySearcher", "list_samplers",
           "make_sampler", "register_sampler", "run_search"]
