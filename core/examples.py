"""Example-level pruning: which training examples each epoch visits.

Three criteria behind one small interface (`epoch_plan`, `record`, `end_epoch`):
- `forgetting` (Tri-Level E-ViT): a random `1 - keep` of the examples is set aside; every
  `example_interval` of training (at most `example_max_swaps` times) the least-forgotten active
  examples are removed and as many set-aside ones restored. Forgetting events (correct -> incorrect
  between two presentations, Toneva et al.) are counted per example; never-learned examples count
  as maximally forgotten.
- `loss` (InfoBatch): examples whose last loss is below the mean are skipped with a probability
  chosen so that about `keep` of the data is visited; the kept ones' losses are scaled up to keep
  the gradient unbiased; pruning is off in the first epoch (no losses yet) and for the final
  `example_anneal` of training.
- `random`: a fresh random `keep` of the examples every epoch.

All statistics are tensors on the training device, updated with vectorized index operations from
per-epoch buffers: no per-example Python loop and no `.item()` per batch. Under data parallelism
the buffers are all-reduced once per epoch, so every rank holds identical statistics and makes the
same (identically seeded) choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import SparsityConfig

NEVER_LEARNED = torch.iinfo(torch.int32).max


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

    # -- per epoch ------------------------------------------------------------------------------
    def epoch_plan(self, epoch: int, batch_size: int, rank: int = 0, world: int = 1, drop_last: bool = True) -> EpochPlan:
        """Shuffled batches of this epoch's examples for `rank` (same choice on every rank)."""
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
        self._epoch_correct.index_copy_(0, indices, correct.to(torch.int32))
        self._epoch_loss.index_copy_(0, indices, loss.detach().float())
        self._epoch_seen.index_fill_(0, indices, 1)

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
        info["active"] = int(self.active.sum())
        return info

    # -- criteria -------------------------------------------------------------------------------
    def forgetting_scores(self) -> torch.Tensor:
        """Forgetting counts with never-learned examples counted as maximally forgotten."""
        return torch.where(self.learned, self.forgetting, torch.full_like(self.forgetting, NEVER_LEARNED))

    def _swap_due(self, epoch: int) -> bool:
        interval = max(1, round(self.config.example_interval * self.epochs))
        done = epoch + 1
        return done % interval == 0 and done < self.epochs and self.swaps < self.config.example_max_swaps

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
        self.active[:] = True
        known = ~torch.isnan(self.loss)
        if epoch >= round(self.epochs * (1.0 - self.config.example_anneal)) or not bool(known.any()):
            return None
        mean = self.loss[known].mean()
        below = known & (self.loss < mean)
        n_below = int(below.sum())
        if n_below == 0:
            return None
        prob = min(1.0, (1.0 - self.config.example_keep) * self.n / n_below)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + 104729 * (epoch + 1))
        pruned = below & (torch.rand(self.n, generator=gen).to(self.device) < prob)
        self.active &= ~pruned
        weights = torch.ones(self.n, device=self.device)
        if prob < 1.0:
            weights[below & ~pruned] = 1.0 / (1.0 - prob)
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
