"""Fault injection for testing failure handling end to end (never active unless asked).

`TRILEVEL_FAULT` in a trial's environment, as JSON (one fault, or a list: the first that applies):
    {"kind": "raise" | "nan" | "oom", "param": "example_keep", "below": 0.8, "epoch": 1}
makes every trial whose sampled `param` is below `below` fail at the end of epoch `epoch`:
`raise` with a RuntimeError, `nan` as a diverged loss, `oom` with torch's own OutOfMemoryError
(what CUDA raises; constructible without a GPU). With `"once": PATH` it fails only while PATH
does not exist, and creates it: the retry that follows trains on (a retry test). Ray passes the
driver's environment to local workers, so tests set it before starting the search.
"""

from __future__ import annotations

import json
import os


def maybe_fail(params: dict, epoch: int) -> None:
    spec = os.environ.get("TRILEVEL_FAULT")
    if not spec:
        return
    faults = json.loads(spec)
    for fault in faults if isinstance(faults, list) else [faults]:
        value = params.get(fault.get("param", "example_keep"))
        if value is not None and value < fault.get("below", 1.0) and epoch == fault.get("epoch", 1):
            once = fault.get("once")
            if once is not None:
                if os.path.exists(once):
                    continue
                open(once, "w").close()
            _fail(fault.get("kind"), epoch)


def _fail(kind: str | None, epoch: int) -> None:
    if kind == "nan":
        from trilevel.core.trainer import TrainingDiverged

        raise TrainingDiverged(f"loss is nan at epoch {epoch} (injected)")
    if kind == "oom":
        import torch

        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8.00 GiB of which "
            f"1.00 GiB is free. (injected at epoch {epoch})"
        )
    raise RuntimeError(f"injected fault at epoch {epoch}")
