"""Does the search pay for itself? Its cost against what the pick saves on one full training run.

The search costs the larger of its wall time and the training time of all its runs summed (trials,
dense seeds, finalists' seeds, train-shorter and fidelity runs): with trials in parallel the sum is
the compute spent, in the same currency as one full run on one trial's share of the machine; with
one trial at a time the wall time also counts the overhead between runs. The pick saves
(1 - 1/speedup) of every full training run it is used for. Here both are in the proxy's own
currency: one full run of `full_epochs` epochs takes the dense proxy's measured seconds per epoch
times `full_epochs`; the saving is that times (1 - 1/speedup). The goal stated to users: the
search costs at most half of one full run's saving, so it pays for itself on the first run.

The estimate holds for a full run on the same model, data and image size as the proxy (the
default: a search runs on the training set the user will train on). A full recipe's augmentation,
or more data than the proxy saw, makes the full run's epochs slower and the saving larger; a
speedup measured on a CPU may differ on a GPU. The report says so beside the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

PAYS_SHARE = 0.5  # the search should cost at most this share of one full run's saving


@dataclass(frozen=True)
class Economics:
    search_seconds: float  # the search's wall time, every phase
    dense_seconds: float  # one dense proxy run's measured training seconds
    proxy_epochs: int
    full_epochs: int
    speedup: float | None  # of what the report recommends (None: nothing faster than dense)
    training_seconds: float = 0.0  # every run's training seconds summed (parallel runs add up)

    @property
    def cost_seconds(self) -> float:
        """What the search cost: its compute (summed training) or its wall time, the larger."""
        return max(self.search_seconds, self.training_seconds)

    @property
    def dense_runs(self) -> float:
        """The search's cost in dense proxy runs."""
        return self.cost_seconds / self.dense_seconds

    @property
    def full_run_seconds(self) -> float:
        """One dense full run at the proxy's seconds per epoch."""
        return self.dense_seconds / self.proxy_epochs * self.full_epochs

    @property
    def saving_seconds(self) -> float:
        if not self.speedup or self.speedup <= 1.0:
            return 0.0
        return self.full_run_seconds * (1.0 - 1.0 / self.speedup)

    @property
    def pays(self) -> bool:
        """Whether the search costs at most `PAYS_SHARE` of one full run's saving."""
        return self.saving_seconds > 0 and self.cost_seconds <= PAYS_SHARE * self.saving_seconds

    @property
    def runs_to_pay(self) -> float | None:
        """Full runs with the pick after which the saving has covered the search (None: never)."""
        return self.cost_seconds / self.saving_seconds if self.saving_seconds else None

    @classmethod
    def build(cls, search_seconds: float | None, dense_seconds: float | None, proxy_epochs: int,
              full_epochs: int, speedup: float | None, training_seconds: float = 0.0) -> "Economics | None":
        if not search_seconds or not dense_seconds or proxy_epochs <= 0:
            return None
        return cls(search_seconds, dense_seconds, proxy_epochs, full_epochs, speedup, training_seconds)
