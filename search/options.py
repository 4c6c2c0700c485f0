"""What a search is asked to do: `SearchOptions` (the CLI fills it from flags, Python callers build
it directly) and its validation, before anything starts; `auto_grace`, MO-ASHA's first rung."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trilevel.core.config import RunConfig
from trilevel.core.data import dataset_info
from trilevel.core.errors import UserError
from trilevel.store.run_store import FULL_EPOCHS, OBJECTIVES
from trilevel.spaces import SearchSpace, load_space

from .constants import (EPOCHS_AUTO_MAX, EPOCHS_AUTO_START, FIDELITY_FACTOR, FIDELITY_MAX_SHARE, PAPERS_MODES,
                        TRAIN_SHORTER_FRACTIONS)


@dataclass
class SearchOptions:
    """Everything a search needs; the CLI fills it from flags, Python callers build it directly.

    `space` is a built-in name, a YAML path or a `SearchSpace`; `sampler` a short name
    (`search/constants.py` SAMPLERS) or any seeded `optuna.samplers.BaseSampler`.
    """

    run: RunConfig
    budget: int = 40
    space: Any = "tri-level"  # str | SearchSpace
    sampler: Any = "tpe"  # str | optuna.samplers.BaseSampler
    objective: str = "time"
    grace_epochs: int | None = None  # None: after the keep schedule settles (see auto_grace)
    reduction_factor: int = 3
    max_acc_drop: float = 0.5
    baseline_seeds: int = 3
    finalists: int = 3  # front configurations re-trained on the baseline's extra seeds (0: off)
    # dense trained for these fractions of the epochs on the dense seeds (empty: skipped)
    train_shorter: tuple[float, ...] = TRAIN_SHORTER_FRACTIONS
    # the pick, its rivals and dense trained this many times longer on one seed (0: off) ...
    fidelity: float = FIDELITY_FACTOR
    # ... when that costs at most this share of the training time the trials took (else skipped, said why)
    fidelity_max_share: float = FIDELITY_MAX_SHARE
    # first: the papers' settings the space can express (spaces/papers.py) are tried right after dense,
    # counted in the budget, run to the end and re-trained with the finalists; off: not tried
    papers: str = "first"
    # `--epochs auto`: the trials' epochs chosen from dense's curve at doubling lengths up to
    # `max_epochs` (search/epochs_auto.py); `run.epochs` is only a placeholder until then
    epochs_auto: bool = False
    max_epochs: int = EPOCHS_AUTO_MAX
    keep_checkpoints: bool = False  # keep the trials' checkpoints after the search has finished
    full_epochs: int = FULL_EPOCHS  # the full training the final command and the economics plan for
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    # > 1: each trial trains data-parallel on this many Ray Train workers, each with the CPUs/GPUs above
    workers_per_trial: int = 1
    concurrency: int | None = None
    address: str | None = None
    # Ray Tune's storage and the records' mirror for a cluster without a shared disk (search/storage.py)
    storage: str | None = None
    output: str = "runs"
    name: str | None = None
    resume: bool = False
    seed: int = 0
    command: str = ""
    live: bool = True

    def validate(self) -> SearchSpace:
        """Check every option before Ray starts; returns the loaded space. Changes nothing and
        builds nothing (the model check is `preflight`, an explicit step of the search)."""
        if self.budget <= 0:
            raise UserError(f"--budget must be a positive number of trials, got {self.budget}")
        if self.grace_epochs is not None and self.grace_epochs <= 0:
            raise UserError(f"--grace-epochs must be >= 1, got {self.grace_epochs}")
        if self.epochs_auto:
            self._validate_epochs_auto()
        elif self.grace_epochs is not None and self.grace_epochs > self.run.epochs:
            raise UserError(f"--grace-epochs ({self.grace_epochs}) cannot exceed --epochs ({self.run.epochs})")
        if self.reduction_factor < 2:
            raise UserError(f"--reduction-factor must be >= 2, got {self.reduction_factor}")
        if self.max_acc_drop < 0:
            raise UserError(f"--max-acc-drop must be >= 0 accuracy points, got {self.max_acc_drop}")
        if self.baseline_seeds < 1:
            raise UserError(f"--baseline-seeds must be >= 1, got {self.baseline_seeds}")
        if self.finalists < 0:
            raise UserError(f"--finalists must be >= 0, got {self.finalists}")
        if any(not 0 < f < 1 for f in self.train_shorter):
            raise UserError(f"--train-shorter fractions must be between 0 and 1, got {list(self.train_shorter)}")
        if self.fidelity and self.fidelity <= 1:
            raise UserError(f"--fidelity must be a factor > 1 (e.g. 2: twice the epochs) or off, got {self.fidelity:g}")
        if self.full_epochs <= 0:
            raise UserError(f"--full-epochs must be >= 1, got {self.full_epochs}")
        if self.fidelity_max_share <= 0:
            raise UserError(f"--fidelity-max-share must be > 0, got {self.fidelity_max_share:g}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UserError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        if self.workers_per_trial < 1:
            raise UserError(f"--workers-per-trial must be >= 1, got {self.workers_per_trial}")
        if self.workers_per_trial > 1 and self.gpus_per_trial not in (0, 1):
            raise UserError(f"--workers-per-trial {self.workers_per_trial} trains one rank per GPU: --gpus-per-trial must "
                            f"be 0 or 1 with it, got {self.gpus_per_trial:g} (NCCL runs one rank per device)")
        if self.concurrency is not None and self.concurrency <= 0:
            raise UserError(f"--concurrency must be >= 1, got {self.concurrency}")
        if self.papers not in PAPERS_MODES:
            raise UserError(f"--papers must be one of {', '.join(PAPERS_MODES)}, got {self.papers!r}")
        if self.objective not in OBJECTIVES:
            raise UserError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.storage is not None:
            from .storage import normalize

            normalize(self.storage)
        if isinstance(self.sampler, str):
            from .searcher import make_sampler

            make_sampler(self.sampler, self.seed)
        dataset_info(self.run.dataset, self.run.data)
        if self.run.device.startswith("cuda") and self.gpus_per_trial == 0:
            raise UserError("--device cuda needs --gpus-per-trial > 0 (Ray hides GPUs from trials that ask for none)")
        if self.gpus_per_trial > 0 and self.address is None:
            import torch

            if not torch.cuda.is_available():
                raise UserError("--gpus-per-trial > 0 but no CUDA GPU is available here")
        return self.space if isinstance(self.space, SearchSpace) else load_space(self.space)

    def _validate_epochs_auto(self) -> None:
        from trilevel.core.recipes import PROXY_MAX_EPOCHS

        if self.max_epochs < 1:
            raise UserError(f"--max-epochs must be >= 1, got {self.max_epochs}")
        if self.run.recipe == "auto" and self.max_epochs > PROXY_MAX_EPOCHS:
            raise UserError(f"--max-epochs {self.max_epochs} with the auto recipe would switch recipes along the "
                            f"curve (proxy up to {PROXY_MAX_EPOCHS} epochs, deit beyond); pass --max-epochs <= "
                            f"{PROXY_MAX_EPOCHS} or a --recipe")
        shortest = min(EPOCHS_AUTO_START, self.max_epochs)
        if self.grace_epochs is not None and self.grace_epochs > shortest:
            raise UserError(f"--grace-epochs ({self.grace_epochs}) cannot exceed {shortest}, the shortest length "
                            "--epochs auto may choose")

    def grace(self, space: SearchSpace) -> int:
        """The first MO-ASHA rung: `grace_epochs`, or `auto_grace` for this space."""
        if self.grace_epochs is not None:
            return self.grace_epochs
        return auto_grace(space.settled_at(), self.run.epochs, self.reduction_factor)

    @property
    def sampler_name(self) -> str:
        return self.sampler if isinstance(self.sampler, str) else type(self.sampler).__name__

    @property
    def space_name(self) -> str:
        return self.space.name if isinstance(self.space, SearchSpace) else Path(self.space).stem

    @property
    def run_dir(self) -> Path:
        name = self.name or f"{self.run.model}-{self.run.dataset}-{self.space_name}"
        return Path(self.output) / name




def auto_grace(settled: float, epochs: int, reduction_factor: int) -> int:
    """First MO-ASHA rung: the first epoch at which the keep schedule has settled, so the rung
    compares configurations that are really pruning, capped at epochs // reduction_factor so at
    least one rung can still stop trials early.

    Replayed on the digits grid (BENCHMARKS.md), MO-ASHA + TPE holds 0.757 of the grid's
    hypervolume at 25% of its epochs with a rung at epoch 1 and 0.840 with this rule (epoch 3 of 9).
    """
    first = math.ceil(settled * epochs - 1e-9)
    return max(1, min(first, epochs // reduction_factor))
