"""Example-level pruning: which training examples each epoch visits.

Three criteria behind one small interface (`epoch_plan`, `record`, `end_epoch`):
- `forgetting` (Tri-Level E-ViT): a random `1 - keep` of the examples is set aside; every
  `example_interval` of training (at most `example_max_swaps` times) the least-forgotten active
  examples (`example_swap` of the data, 5% as the reference) are removed and as many set-aside ones
  restored. Forgetting events (correct -> incorrect between two presentations, Toneva et al.) are
  counted per example over a window: as in the reference, the statistics restart after every
  swap, so a removal reflects the last interval's behaviour, not time spent in the pool. A window
  holds at least 2 presentations (the interval is at least 2 epochs): after a single presentation
  every score is 0 or "never learned", and the choice would be random among examples correct once.
  Never-learned examples count as maximally forgotten. Examples tied at the removal cutoff are
  chosen by a seeded random key; the reference takes them in numpy's `argsort` order (not a stable
  sort), so only the choice within that tie can differ (tests/test_reference_ports.py).
- `loss` (InfoBatch, `infobatch.py`): every example whose last loss is below the mean of all
  examples' losses is a candidate; a random `int(r * candidates)` of them is kept, r = max(0.1,
  `example_keep`) (InfoBatch's keep_ratio = 1 - prune_ratio, floored at 0.1), the rest skipped for
  the epoch, and the kept candidates' losses are weighted 1/r (at most 10x), so the expected
  gradient is the full one. `example_keep` 0.5 is InfoBatch's default prune ratio 0.5. The visited
  fraction is therefore 1 - (1 - r) x (share below the mean), more than `example_keep`; the run
  records the examples actually visited and its FLOPs and time use those. Pruning is off in the first
  epoch (no losses yet) and once (epoch + 1) > (1 - `example_anneal`) x epochs (InfoBatch's
  delta = 0.875).
  Annealing differs from the packaged reference (infobatch/infobatch.py, commit 8bbb012) when
  delta x epochs is not an integer: its `IBSampler.reset` restores weight 1 only when
  `iterations == stop_prune + 1`, a float equality that then never holds, so the examples kept in
  the last pruned epoch stay weighted 1/r through every annealing epoch (300 epochs x 0.875 =
  262.5: the last 38 epochs of a DeiT run). Here every example has weight 1 once pruning stops,
  which is what the reference does when delta x epochs is an integer (its CIFAR example: 200 x
  0.875 = 175), what its research/infobatch.py does always (`<=` there), and what annealing is for:
  the full data with the unscaled gradient at the end of training.
- `random`: a fresh random `keep` of the examples every epoch.

All statistics are tensors on the training device, updated with vectorized index operations from
per-epoch buffers: no per-example Python loop and no `.item()` per batch. Under data parallelism
the buffers are all-reduced once per epoch, so every rank holds identical statistics and makes the
same (identically seeded) choices.

Under the full training recipes (core/recipes.py) an example may be presented several times in one
epoch and never as itself alone. The statistics are defined as follows:
- repeated augmentation (`repeats` copies, timm's `RepeatAugSampler`, on one rank or several): each
  copy is a presentation of the same example; the epoch's outcome is "correct" if any copy was, and
  its loss is the mean over the copies.
- Mixup/CutMix: "correct" means the prediction equals the example's *own* label (not the partner's,
  whatever lambda was drawn), and its loss is the training loss against the mixed soft target, the
  quantity InfoBatch scores and rescales.
The active set the pruner chooses is what repeated augmentation repeats: a pruned example gets no
copies, so `example_keep` keeps its meaning (the fraction of the data visited).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import SparsityConfig

NEVER_LEARNED = torch.iinfo(torch.int32).max
MIN_WINDOW_EPOCHS = 2  # forgetting: presentations per statistics window before a swap may use it
INFOBATCH_MIN_KEEP = 0.1  # InfoBatch's floor on keep_ratio: loss weights at most 10x


def infobatch_keep_ratio(example_keep: float) -> float:
    """InfoBatch's keep_ratio for a below-mean example: min(1, max(0.1, 1 - prune_ratio))."""
    return min(1.0, max(INFOBATCH_MIN_KEEP, example_keep))


@dataclass
class EpochPlan:
    """Indices this rank visits this epoch (shuffled, batched) and per-example loss weights."""

    batches: list[list[int]]
    num_active: int  # examples visited by all ranks together this epoch
    weights: torch.Tensor | None  # [num_examples] loss weight, None = all ones


class ExamplePruner:
    def __init__(self, config: SparsityConfig, num_examples: int, epochs: int, seed: int = 0, device="cpu"):
        self.config = config
        self.n = num_examples
        self.epochs = epochs
        self.seed = seed
        self.device = torch.device(device)
        self.enabled = config.example_keep < 1.0
        n_keep = max(1, round(config.example_keep * num_examples))
        self.active = torch.ones(num_examples, dtype=torch.bool, device=self.device)
        if self.enabled and config.example_criterion == "forgetting":
            self.active[:] = False
            self.active[self._perm(-1)[:n_keep].to(self.device)] = True
        # Statistics over presentations (one per epoch per example).
        self.last_correct = torch.full((num_examples,), -1, dtype=torch.int8, device=self.device)
        self.forgetting = torch.zeros(num_examples, dtype=torch.int32, device=self.device)
        self.learned = torch.zeros(num_examples, dtype=torch.bool, device=self.device)
        self.loss = torch.full((num_examples,), float("nan"), device=self.device)
        self.swaps = 0
        self._reset_buffers()

    def expected_active(self, epoch: int) -> int:
        """Examples visited in `epoch` as planned now, for FLOPs and time projections.

        Exact for `random` and `forgetting`. For `loss` it depends on the losses: the current share of
        examples below the mean (half before any loss is known), InfoBatch's count of kept ones.
        """
        if not self.enabled:
            return self.n
        if self.config.example_criterion != "loss":
            return max(1, round(self.config.example_keep * self.n))
        if epoch == 0 or self._annealed(epoch):
            return self.n
        below = self._below_mean()
        n_below = int(below.sum()) if below is not None else self.n // 2
        return self.n - n_below + int(infobatch_keep_ratio(self.config.example_keep) * n_below)

    def _below_mean(self) -> torch.Tensor | None:
        """InfoBatch's candidates: examples whose last loss is below the mean (None: no loss yet)."""
        known = ~torch.isnan(self.loss)
        if not bool(known.any()):
            return None
        return known & (self.loss < self.loss[known].mean())

    def _annealed(self, epoch: int) -> bool:
        """InfoBatch stops pruning once (epoch + 1) > delta x epochs (IBSampler.reset)."""
        return epoch + 1 > self.epochs * (1.0 - self.config.example_anneal)

    # -- per epoch ------------------------------------------------------------------------------
    def epoch_plan(self, epoch: int, batch_size: int, rank: int = 0, world: int = 1, drop_last: bool = True,
                   repeats: int = 0) -> EpochPlan:
        """Shuffled batches of this epoch's examples for `rank` (same choice on every rank).

        `repeats` > 1: repeated augmentation over the active examples with timm's `RepeatAugSampler`
        (each example `repeats` times in a row, dealt across ranks, so copies land on different ranks;
        every rank gets ceil(active / world) items, the epoch's length without repeats).
        """
        weights = None
        if self.enabled and self.config.example_criterion == "random":
            self.active[:] = False
            self.active[self._perm(epoch)[: max(1, round(self.config.example_keep * self.n))].to(self.device)] = True
        elif self.enabled and self.config.example_criterion == "loss":
            weights = self._infobatch(epoch)
        order = self._perm(epoch)
        active = self.active.cpu()[order]
        indices = order[active]
        num_active = len(indices)
        if repeats > 1:
            from timm.data.distributed_sampler import RepeatAugSampler

            # shuffle=False: `indices` is already this epoch's seeded order, the same on every rank
            sampler = RepeatAugSampler(range(num_active), num_replicas=world, rank=rank, shuffle=False,
                                       num_repeats=repeats, selected_round=0)
            mine = indices[list(sampler)].tolist()
        else:
            per_rank = num_active // world  # equal shares so every rank runs the same number of steps
            mine = indices[rank::world][:per_rank].tolist()
        stop = len(mine) - len(mine) % batch_size if drop_last and len(mine) >= batch_size else len(mine)
        batches = [mine[i : i + batch_size] for i in range(0, stop, batch_size)]
        return EpochPlan(batches=batches, num_active=num_active, weights=weights)

    def record(self, indices: torch.Tensor, correct: torch.Tensor, loss: torch.Tensor) -> None:
        """Note one batch's per-example outcomes (tensors on the training device)."""
        if not self.enabled:
            return
        indices = indices.to(self.device, non_blocking=True)
        # Reductions, not copies: an index may repeat (repeated augmentation); see the module doc.
        self._epoch_correct.scatter_reduce_(0, indices, correct.to(torch.int32), "amax")
        self._epoch_loss.index_add_(0, indices, loss.detach().float())
        self._epoch_seen.index_add_(0, indices, torch.ones_like(indices, dtype=torch.int32))

    def end_epoch(self, epoch: int) -> dict:
        """Fold the epoch into the statistics (all-reduced across ranks) and remove/restore examples."""
        info = {"active": int(self.active.sum())}
        if not self.enabled:
            return info
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self._epoch_correct, op=dist.ReduceOp.MAX)
            dist.all_reduce(self._epoch_loss, op=dist.ReduceOp.SUM)
            dist.all_reduce(self._epoch_seen, op=dist.ReduceOp.SUM)
        seen = self._epoch_seen > 0
        current = self._epoch_correct.clamp_min(0).to(torch.int8)
        self.forgetting += (seen & (self.last_correct == 1) & (current == 0)).to(torch.int32)
        self.learned |= seen & (current == 1)
        self.last_correct = torch.where(seen, current, self.last_correct)
        self.loss = torch.where(seen, self._epoch_loss / self._epoch_seen.clamp_min(1), self.loss)
        self._reset_buffers()
        if self.config.example_criterion == "forgetting" and self._swap_due(epoch):
            info["swapped"] = self._remove_restore(epoch)
            self._reset_window()
        info["active"] = int(self.active.sum())
        return info

    # -- criteria -------------------------------------------------------------------------------
    def forgetting_scores(self) -> torch.Tensor:
        """Forgetting counts with never-learned examples counted as maximally forgotten."""
        return torch.where(self.learned, self.forgetting, torch.full_like(self.forgetting, NEVER_LEARNED))

    def swap_interval(self) -> int:
        """Epochs between remove/restore steps: `example_interval` of the run, at least 2. The
        window restarts at every swap, so this is also each window's number of presentations."""
        return max(MIN_WINDOW_EPOCHS, round(self.config.example_interval * self.epochs))

    def _swap_due(self, epoch: int) -> bool:
        done = epoch + 1
        return done % self.swap_interval() == 0 and done < self.epochs and self.swaps < self.config.example_max_swaps

    def _reset_window(self) -> None:
        """Start a new statistics window (the reference resets its per-example records at a swap)."""
        self.forgetting.zero_()
        self.learned.zero_()
        self.last_correct.fill_(-1)

    def _remove_restore(self, epoch: int) -> int:
        pool = (~self.active).nonzero().squeeze(1)
        active = self.active.nonzero().squeeze(1)
        n_swap = min(round(self.config.example_swap * self.n), len(pool), len(active) - 1)
        if n_swap <= 0:
            return 0
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * (epoch + 1))
        # Least forgotten first; ties broken by a seeded random key so no index order bias.
        tie = torch.rand(len(active), generator=gen).to(self.device)
        scores = self.forgetting_scores()[active].double() + tie
        removed = active[scores.argsort()[:n_swap]]
        restored = pool[torch.randperm(len(pool), generator=gen)[:n_swap].to(self.device)]
        self.active[removed] = False
        self.active[restored] = True
        self.swaps += 1
        return n_swap

    def _infobatch(self, epoch: int) -> torch.Tensor | None:
        """InfoBatch.prune: keep a random int(r * n_below) of the below-mean examples, weight 1/r."""
        self.active[:] = True
        candidates = None if self._annealed(epoch) else self._below_mean()
        if candidates is None:
            return None
        below = candidates.nonzero().squeeze(1)
        if len(below) == 0:
            return None
        ratio = infobatch_keep_ratio(self.config.example_keep)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 104729 * (epoch + 1))
        order = torch.randperm(len(below), generator=gen).to(self.device)
        n_keep = int(ratio * len(below))
        kept, pruned = below[order[:n_keep]], below[order[n_keep:]]
        self.active[pruned] = False
        weights = torch.ones(self.n, device=self.device)
        weights[kept] = 1.0 / ratio
        return weights

    # -- helpers --------------------------------------------------------------------------------
    def _perm(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 1)
        return torch.randperm(self.n, generator=gen)

    def _reset_buffers(self) -> None:
        self._epoch_correct = torch.full((self.n,), -1, dtype=torch.int32, device=self.device)
        self._epoch_loss = torch.zeros(self.n, device=self.device)
        self._epoch_seen = torch.zeros(self.n, dtype=torch.int32, device=self.device)

    def state_dict(self) -> dict:
        return {
            "active": self.active.cpu(),
            "last_correct": self.last_correct.cpu(),
            "forgetting": self.forgetting.cpu(),
            "learned": self.learned.cpu(),
            "loss": self.loss.cpu(),
            "swaps": self.swaps,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("active", "last_correct", "forgetting", "learned", "loss"):
            setattr(self, name, state[name].to(self.device))
        self.swaps = int(state["swaps"])
