"""Every place the search relies on Ray beyond its documented API, in one module.

Written for and tested with Ray 2.60 (pyproject pins `ray[tune]<2.61`). Each workaround names
why it exists and the test that fails if Ray's behaviour changes; when bumping Ray, run those
tests first (tests/test_ray_compat.py, then tests/test_search.py and tests/test_cluster.py).

1. `quiet_env`: environment variables read by Ray at import time (documented individually in
   Ray's docs, but their effect on a CLI that owns the terminal is ours to choose).
2. `keep_loopback_local`: Ray rewrites 127.0.0.1 to the machine's reachable IP on purpose, for
   clusters (`ray._private.services.resolve_ip_for_localhost`). A search started here is
   single-machine, so its servers must stay off the network; and `--address 127.0.0.1:PORT`
   must reach a cluster started with `--node-ip-address 127.0.0.1`, which listens on loopback
   only. Private hook; checked by tests/test_ray_compat.py (the hook exists and is what Ray calls)
   and tests/test_search.py::test_local_ray_listens_on_loopback_without_dashboard.
3. `init_local`: `ray.init(address="local", _node_ip_address=...)`, the private keyword
   argument being the only way to bind a local instance to loopback (checked by the same test).
4. `current_cluster_address`: where `ray start` records the running cluster
   (`/tmp/ray/ray_current_cluster`), read to fail in seconds when it is not reachable instead of
   after Ray's long retries. Checked against `ray._common.utils.get_ray_address_file`.
5. `resume_failures_raise`: Ray's `TuneController` catches any error while it resumes an
   experiment (an unreadable state, searcher or callback file), logs "Failed to restore the run
   state." on `ray.tune.execution.tune_controller` and silently starts the experiment afresh, which
   drops the trials that were cut off (seen in the CIFAR search, 2026-12-03). Inside, that log
   record raises `RayResumeFailed` instead, so the resume can continue from the run's records.
   Relies on the logger's name and the message; checked by tests/test_search.py
   (test_interrupt_and_resume_completes_budget, case "damaged searcher state") and
   tests/test_ray_compat.py (the logger and message are in Ray's source).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

RAY_TESTED = "2.60"
RAY_ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")
QUIET_ENV = {
    "RAY_DEDUP_LOGS": "0",  # the tool owns the terminal: no "[repeated Nx]" lines
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_AUTH_MODE": "disabled",  # no token auth for a local start
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the run store is the record, not CSV/TB loggers
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}
QUIET_INIT = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)


def quiet_env() -> None:
    """Set before `import ray` (a user's own setting wins)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def quiet_loggers() -> None:
    """Trial errors go to the run store instead of Ray's loggers."""
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def keep_loopback_local() -> None:
    """Stop Ray from rewriting a loopback address to the machine's reachable IP (see above)."""
    import ray._private.services as services

    services.resolve_ip_for_localhost = lambda host: host


def init_local() -> None:
    """A fresh single-machine Ray instance of our own, bound to loopback, no dashboard.

    address="local": without it `ray.init()` silently joins a cluster already running on the
    machine (RAY_ADDRESS, or the last `ray start`), then fails in ways the user did not ask for.
    """
    import ray

    keep_loopback_local()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
             **QUIET_INIT)


def init_cluster(address: str) -> None:
    """Join an existing cluster (documented API), loopback addresses kept as given."""
    import ray

    keep_loopback_local()
    ray.init(address=address, **QUIET_INIT)


def current_cluster_address() -> str | None:
    """The address `ray start` recorded on this machine, or None."""
    if RAY_ADDRESS_FILE.exists():
        return RAY_ADDRESS_FILE.read_text().strip() or None
    return None


class RayResumeFailed(RuntimeError):
    """Ray could not resume its experiment (its own error is the cause)."""


RESUME_LOGGER = "ray.tune.execution.tune_controller"
RESUME_FAILED = "Failed to restore the run state"


@contextmanager
def resume_failures_raise() -> Iterator[None]:
    """While inside, Ray's "Failed to restore the run state." raises RayResumeFailed (see 5. above);
    that logger's other records stay as quiet as `quiet_loggers` makes them."""
    logger = logging.getLogger(RESUME_LOGGER)

    def refuse(record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(RESUME_FAILED):
            cause = record.exc_info[1] if record.exc_info else None
            raise RayResumeFailed(f"{type(cause).__name__}: {cause}" if cause else record.getMessage()) from cause
        return False  # the level below lets every record through to here: drop the rest

    level = logger.level
    logger.setLevel(logging.ERROR)
    logger.addFilter(refuse)
    try:
        yield
    finally:
        logger.removeFilter(refuse)
        logger.setLevel(level)
