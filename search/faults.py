"""Fault injection for testing failure handling end to end (never active unless asked).

`TRILEVEL_FAULT` in a trial's environment, as JSON:
    {"kind": "raise" | "nan", "param": "example_keep", "below": 0.8, "epoch": 1}
makes every trial whose sampled `param` is below `below` fail at the end of epoch `epoch`:
`raise` with a RuntimeError, `nan` as a diverged loss. Ray passes the driver's environment to
local workers, so tests set it before starting the search.
"""

from __future__ import annotations

import json
import os


def maybe_fail(params: dict, epoch: int) -> None:
    spec = os.environ.get("TRILEVEL_FAULT")
    if not spec:
        return
    fault = json.loads(spec)
    value = params.get(fault.get("param", "example_keep"))
    if value is None or value >= fault.get("below", 1.0) or epoch != fault.get("epoch", 1):
        return
    if fault.get("kind") == "nan":
        from trilevel.core.trainer import TrainingDiverged

        raise TrainingDiverged(f"loss is nan at epoch {epoch} (injected)")
    raise RuntimeError(f"injected fault at epoch {epoch}")
