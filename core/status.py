"""A training run's status (`trilevel-train`'s metrics.json, a trial's reports), as string enums.

The search's run store (store/run_store.py) builds its trial statuses on these: a trial is a
training run that the search may also stop early or record as failed.
"""

from __future__ import annotations

import enum

if hasattr(enum, "StrEnum"):  # Python >= 3.11
    StrEnum = enum.StrEnum
else:  # Python 3.10: the same behaviour (str() and format() give the value)
    class StrEnum(str, enum.Enum):
        def __str__(self) -> str:
            return str(self.value)

        __format__ = str.__format__


class RunStatus(StrEnum):
    """Where one training run stands; a run that diverged ends with "diverged: <why>" instead."""

    RUNNING = "running"
    COMPLETED = "completed"  # trained every epoch


RUNNING, COMPLETED = RunStatus.RUNNING, RunStatus.COMPLETED
