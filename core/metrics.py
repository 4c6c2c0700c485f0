"""What one training run reports: `Trainer.fit`'s result, its per-epoch callback's argument, and
`trilevel-train`'s metrics.json (`RunMetrics.to_dict`).

Typed, and still readable by key as the dict it replaced (`metrics["val_acc"]`, `.get`, `**`,
`dict(metrics)`), so scripts that read the dict keep working; it is not a dict (no `json.dump` or
`update` of it: use `to_dict()`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping


@dataclass(frozen=True)
class RunMetrics(Mapping[str, Any]):
    """A training run so far (`status` RUNNING during training) or at its end."""

    status: str  # core/status.py RunStatus, or "diverged: <why>"
    epochs: int  # epochs trained
    val_acc: float | None  # the last epoch's validation accuracy, a fraction
    train_seconds: float  # measured training time (selection and bookkeeping included)
    projected_seconds: float | None  # train_seconds scaled to the full run by its planned FLOPs
    images_per_second: float | None
    flops_per_image: float | None
    train_flops: float
    planned_train_flops: float
    expected_train_flops: float  # the full run's FLOPs, as planned from here (the flops objective)
    flops_speedup: float  # dense's expected FLOPs over this run's
    paired_cost: float | None  # the full run's cost as a fraction of dense's, timed in pairs (core/paired.py)
    paired_speedup: float | None  # 1 / paired_cost
    paired_seconds: float  # spent measuring the pairs, not in train_seconds
    paired_cpu_share: float | None  # CPU: the measuring thread's share of a core while it timed
    paired_ratios: dict[str, float | None]  # "token_keep/attention_keep" -> step time over dense's
    peak_memory_mb: float
    world_size: int  # processes training it (DDP)
    device: str
    workers: int  # data loader workers
    img_size: int
    patch_size: int
    num_train: int
    num_val: int
    chance_acc: float  # always guessing the most frequent validation class
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch
    config: dict[str, Any] = field(default_factory=dict)  # the resolved RunConfig

    def to_dict(self) -> dict[str, Any]:
        """metrics.json's content."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # -- read by key, as the dict this replaced --------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)


_FIELDS = tuple(f.name for f in dataclasses.fields(RunMetrics))
