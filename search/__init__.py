"""Search: Ray Tune + Optuna samplers + multi-objective ASHA over a tri-level sparsity space."""

from .moasha import MOASHA, MOASHAScheduler
from .runner import SearchOptions, run_search
from .searcher import SAMPLERS, ParetoOptunaSearch, make_sampler

__all__ = ["MOASHA", "MOASHAScheduler", "ParetoOptunaSearch", "SAMPLERS", "SearchOptions", "make_sampler", "run_search"]
