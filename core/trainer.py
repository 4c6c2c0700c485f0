"""Train one `RunConfig` and measure it honestly.

Measured: training seconds per epoch (data loading + steps, without evaluation and checkpoints),
images/s over the steps after the first two, FLOPs per training image from
`torch.utils.flop_counter` at the epoch's scheduled keep ratios, peak memory. The recipe's values
(core/recipes.py) switch timm's components on: AdamW with layer-wise lr decay
(`create_optimizer_v2`), warm-up + cosine learning rate, label smoothing, `Mixup` (CutMix) with soft
targets, `RepeatAugSampler` (under DDP only, as timm), `ModelEmaV3`; autocast on GPU in the run's
`amp_dtype` (bf16 by default; fp16 with torch's GradScaler), fp32 on CPU. Data-parallel under
`torchrun` (DDP; gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import copy
import math
import os
import random
import resource
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from .atomic import atomic_path
from .config import RunConfig
from .data import build_datasets, dataset_info
from .errors import UserError
from .examples import ExamplePruner
from .models import build_model, default_patch_size
from .paired import PairedTimer, keep_key
from .patch import set_keep, sparsify
from .metrics import RunMetrics
from .status import COMPLETED, RUNNING
from .schedules import epoch_keep_points, keep_at

CHECKPOINT = "checkpoint.pt"
WARMUP_STEPS = 2  # steps excluded from images/s (allocator and kernel warm-up)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


MAX_AUTO_WORKERS = 8


def loader_workers(requested: int | None, device: torch.device) -> int:
    """Data loader processes: `requested` when set; automatically, none on CPU and
    min(8, this process's CPUs / the GPUs sharing the machine) on a GPU.

    On CPU the step and the loader share the same cores: a worker process takes cycles from the
    step's own threads (BENCHMARKS.md, "Loader or step"). On a GPU the step runs on the device and
    the CPU's only job is the input pipeline, so the loader gets the cores (timm's train.py leaves
    this to `--workers`, default 4).
    """
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(MAX_AUTO_WORKERS, cpus // max(1, sharing)))


class _PlanBatches:
    """A batch sampler whose batches are replaced every epoch (the example pruner's plan), so one
    DataLoader, and its persistent worker processes, serves the whole run. The DataLoader iterates
    it in the main process at the start of each epoch and sends the indices to its workers."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Indexed(Dataset):
    """Yields (image, label, index) so per-example statistics can be recorded."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return x, y, i


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) visible")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def lr_at(config: RunConfig, progress: float) -> float:
    """Linear warm-up then cosine to min_lr, by training progress (hand-written: timm's schedulers
    count steps, and our epochs change length as example pruning removes examples). `config` is a
    resolved one (`RunConfig.resolved()`, as the trainer holds): this runs every step."""
    base = config.lr
    if config.warmup > 0 and progress < config.warmup:
        return base * max(progress / config.warmup, 1e-3)
    t = (progress - config.warmup) / max(1e-12, 1.0 - config.warmup)
    return config.min_lr + (base - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


class Trainer:
    """Builds data and model from a RunConfig, trains, evaluates and checkpoints every epoch.

    `callback(metrics, trainer)` runs after every epoch on rank 0 (the search reports through it),
    or on every rank with `callback_on_every_rank` (Ray Train's report is a collective: every
    worker calls it, rank 0's metrics are the ones kept).
    """

    def __init__(self, config: RunConfig, callback: Callable[[RunMetrics, "Trainer"], None] | None = None, *,
                 callback_on_every_rank: bool = False):
        self.config = config = config.resolved()  # the recipe's values filled in: what runs is what is recorded
        self.callback = callback
        self.callback_on_every_rank = callback_on_every_rank
        self.device = resolve_device(config.device)
        self.owns_process_group = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized()
        self.rank, self.world = _init_distributed(self.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)

        info = dataset_info(config.dataset, config.data)
        self.img_size = config.img_size or info.default_img_size
        self.patch_size = config.patch_size or default_patch_size(self.img_size)
        if self.patch_size is not None and self.img_size % self.patch_size:
            raise UserError(f"image size {self.img_size} is not divisible by patch size {self.patch_size}")
        self.train_set, self.val_set, self.info = build_datasets(
            config.dataset, config.data, img_size=self.img_size, seed=config.data_seed,
            val_fraction=config.val_fraction, train_subset=config.train_subset,
            val_subset=config.val_subset, augment=config.augment, scale=config.scale, aa=config.aa,
            reprob=config.reprob,
        )
        torch.manual_seed(config.seed)
        model = build_model(
            config.model, num_classes=self.info.num_classes, img_size=self.img_size,
            in_chans=self.info.in_chans, patch_size=self.patch_size, drop_path=config.drop_path,
            pretrained=config.pretrained, initial_checkpoint=config.initial_checkpoint, **config.model_kwargs,
        )
        self.model = sparsify(model, config.sparsity).to(self.device)
        # A copy outside DDP, never trained: FLOPs are counted on it and the paired speed timed on it.
        self.flop_model = copy.deepcopy(self.model)
        self.net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        torch.manual_seed(config.seed + 1000 * self.rank)  # different dropout/drop-path per rank
        # Mixup's lambda (numpy) and timm's augmentations (python `random`) draw from the global
        # generators, seeded like timm's train.py does (`random_seed(seed, rank)`).
        random.seed(config.seed + 1000 * self.rank)
        np.random.seed(config.seed + 1000 * self.rank)
        self.optimizer = self._make_optimizer(self.model)
        # timm's Mixup/CutMix: soft targets (label smoothing folded in), paired with the reversed batch.
        self.mixup = (Mixup(mixup_alpha=config.mixup, cutmix_alpha=config.cutmix,
                            label_smoothing=config.label_smoothing, num_classes=self.info.num_classes)
                      if config.mixup > 0 or config.cutmix > 0 else None)
        # Mixed precision on a GPU only; float16 needs loss scaling (torch's GradScaler), bfloat16 does not.
        self.amp_dtype = getattr(torch, config.amp_dtype) if self.device.type == "cuda" else torch.float32
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        # This run's step time against dense's, timed in pairs on the shadow copy (core/paired.py).
        self.paired = PairedTimer(self.flop_model, self._make_optimizer, self.device, self.amp_dtype,
                                  lambda: _sync(self.device), pairs=config.speed_pairs, clip_grad=config.clip_grad)
        # Repeated augmentation spreads an image's copies over ranks; timm uses it under DDP only.
        self.aug_repeats = config.aug_repeats if self.world > 1 and config.aug_repeats > 1 else 0
        # timm's EMA of the weights, validated instead of the raw weights when the recipe asks for it.
        # Its decay warms up (1 - (1 + step)^-3/4, timm's setting for shorter runs), so early epochs
        # average over few steps and a short run is not scored on weights from its first steps.
        self.ema = (ModelEmaV3(self.model, decay=config.model_ema, use_warmup=True, warmup_power=3 / 4)
                    if config.model_ema else None)
        self.steps_done = 0
        self.pruner = ExamplePruner(config.sparsity, len(self.train_set), config.epochs, config.seed, self.device)
        targets = np.asarray(getattr(self.val_set, "targets", []), dtype=np.int64)
        # Accuracy of always guessing the most frequent validation class: the floor a run that
        # learned nothing reaches (1/classes on balanced data).
        self.chance_acc = float(np.bincount(targets).max() / len(targets)) if len(targets) else 1.0 / self.info.num_classes
        self.epoch = 0
        self.history: list[dict] = []
        self._flops_cache: dict[tuple[float, float], float] = {}
        self.workers = loader_workers(config.workers, self.device)
        self._plan = _PlanBatches()
        self._train_loader: DataLoader | None = None  # built at the first epoch, kept for the run
        self._val_loader: DataLoader | None = None

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """timm's AdamW with the run's weight decay and layer-wise lr decay (also the shadow's)."""
        cfg = self.config
        return create_optimizer_v2(model, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay,
                                   layer_decay=cfg.layer_decay if 0 < cfg.layer_decay < 1 else None)

    def _loader(self, dataset: Dataset, **kw) -> DataLoader:
        """Pinned memory on a GPU; with worker processes, kept alive across epochs and prefetching."""
        extra = dict(persistent_workers=True, prefetch_factor=4) if self.workers else {}
        return DataLoader(dataset, num_workers=self.workers, pin_memory=self.device.type == "cuda", **extra, **kw)

    # -- schedule -------------------------------------------------------------------------------
    def keeps(self, progress: float) -> tuple[float, float]:
        s, epochs = self.config.sparsity, self.config.epochs
        return keep_at(s, s.token_keep, progress, epochs), keep_at(s, s.attention_keep, progress, epochs)

    def epoch_keeps(self, epoch: int) -> list[tuple[float, float]]:
        """The (token, attention) keeps whose mean FLOPs are the epoch's cost per image."""
        return [self.keeps(p) for p in epoch_keep_points(self.config.sparsity, epoch, self.config.epochs)]

    def eval_keeps(self) -> tuple[float, float]:
        """Evaluation uses the keeps at the end of training; input patch dropping evaluates on all."""
        token, attention = self.keeps(1.0)
        if self.config.sparsity.token_mode == "input":
            token = 1.0
        return token, attention

    # -- measurement ----------------------------------------------------------------------------
    def flops_per_image(self, token_keep: float, attention_keep: float) -> float:
        """Forward + backward FLOPs of one training image at these keeps (FlopCounterMode). Inside
        `fork_rng`: counting draws random inputs and dropout, and must not move training's generators."""
        key = (round(token_keep, 4), round(attention_keep, 4))
        if key not in self._flops_cache:
            model = self.flop_model
            set_keep(model, *key)
            model.train()
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                x = torch.randn(2, self.info.in_chans, self.img_size, self.img_size, device=self.device)
                with FlopCounterMode(display=False) as counter:
                    model(x).sum().backward()
            model.zero_grad(set_to_none=True)
            self._flops_cache[key] = counter.get_total_flops() / 2
        return self._flops_cache[key]

    def epoch_flops(self, epoch: int, num_images: int) -> float:
        keeps = self.epoch_keeps(epoch)
        return num_images * sum(self.flops_per_image(*k) for k in keeps) / len(keeps)

    def planned_train_flops(self) -> float:
        """Training FLOPs of the full run as planned (active examples x FLOPs at each epoch's keeps);
        projects measured seconds of a partial run to the full length."""
        total = 0.0
        for epoch in range(self.config.epochs):
            if epoch < len(self.history):
                total += self.history[epoch]["train_flops"]
            else:
                total += self.epoch_flops(epoch, self._expected_active(epoch))
        return total

    def expected_train_flops(self, dense: bool = False) -> float:
        """Training FLOPs of the full run from the keep schedule and the examples visited (counted for
        trained epochs, planned for the rest; no timing): the `--objective flops` cost; `dense=True`
        gives the dense reference for the FLOPs speedup."""
        if dense:
            return self.config.epochs * len(self.train_set) * self.flops_per_image(1.0, 1.0)
        return sum(self.epoch_flops(e, self._expected_active(e)) for e in range(self.config.epochs))

    def _expected_active(self, epoch: int) -> int:
        """Examples visited in `epoch`: counted for epochs already trained, else the pruner's plan."""
        if epoch < len(self.history):
            return self.history[epoch]["active_examples"]
        return self.pruner.expected_active(epoch)

    def epoch_time_ratio(self, epoch: int) -> float | None:
        """The epoch's training step time relative to dense's (the mean over its keep points):
        measured in pairs where the keeps were reached, else the FLOPs ratio scaled by the latest
        measured time/FLOPs ratio (see core/paired.py). None when the paired timing is off."""
        if not self.paired.enabled:
            return None
        dense = self.flops_per_image(1.0, 1.0)
        per_flop = self._time_per_flop()
        values = []
        for keeps in self.epoch_keeps(epoch):
            measured = self.paired.ratio(keep_key(*keeps))
            values.append(measured if measured is not None else per_flop * self.flops_per_image(*keeps) / dense)
        return sum(values) / len(values)

    def _time_per_flop(self) -> float:
        """The latest measured keep's time ratio over its FLOPs ratio (1.0 before any measurement)."""
        dense = self.flops_per_image(1.0, 1.0)
        for key in reversed(list(self.paired.ratios)):
            flops = self.flops_per_image(*key) / dense
            if flops > 0:
                return self.paired.ratio(key) / flops
        return 1.0

    def paired_cost(self) -> float | None:
        """The full run's training cost as a fraction of dense's at the same length on every example:
        examples visited (counted, then planned) x each epoch's paired step-time ratio."""
        if not self.paired.enabled:
            return None
        epochs, total = self.config.epochs, len(self.train_set)
        return sum(self._expected_active(e) / total * self.epoch_time_ratio(e) for e in range(epochs)) / epochs

    # -- training -------------------------------------------------------------------------------
    def fit(self) -> RunMetrics:
        """Train the remaining epochs; returns the final metrics (see `metrics`)."""
        status: str = COMPLETED
        try:
            while self.epoch < self.config.epochs:
                record = self.train_epoch(self.epoch)
                record.update(self.evaluate())
                self.history.append(record)
                self.epoch += 1
                if self.config.output:
                    self.checkpoint(Path(self.config.output) / CHECKPOINT)
                if self.callback is not None and (self.rank == 0 or self.callback_on_every_rank):
                    self.callback(self.metrics(), self)
        except TrainingDiverged as exc:
            status = f"diverged: {exc}"
        return self.metrics(status)

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.config
        _sync(self.device)
        start = time.perf_counter()  # example selection and bookkeeping count as training time
        plan = self.pruner.epoch_plan(epoch, cfg.batch_size, self.rank, self.world, repeats=self.aug_repeats)
        self._plan.batches = plan.batches
        if self._train_loader is None:
            self._train_loader = self._loader(_Indexed(self.train_set), batch_sampler=self._plan)
        loader = self._train_loader
        weights = plan.weights
        self.net.train()
        steps = max(1, len(plan.batches))
        loss_sum = torch.zeros((), device=self.device)
        images = timed_images = 0
        timed_start = None
        measuring = 0.0  # seconds of paired timing in this epoch: not training time
        for step, (x, y, idx) in enumerate(loader):
            if step == 0:
                missing = self.paired.needs(self.epoch_keeps(epoch))
                if missing:
                    before = self.paired.seconds
                    self.paired.measure(x, y, missing)
                    measuring = self.paired.seconds - before
            if len(self.history) == 0 and step == WARMUP_STEPS:
                _sync(self.device)
                timed_start = time.perf_counter()
            elif len(self.history) > 0 and step == 0:
                timed_start = start
            progress = (epoch + step / steps) / cfg.epochs
            loss = self.train_step(x, y, idx, progress, weights)
            loss_sum += loss
            images += len(y)
            if timed_start is not None:
                timed_images += len(y)
            if step % 25 == 24 and not self._finite(loss_sum):
                raise TrainingDiverged(f"loss is {loss_sum.item()} at epoch {epoch + 1}, step {step + 1}")
        _sync(self.device)
        timed_seconds = time.perf_counter() - timed_start if timed_start is not None else 0.0
        if len(self.history) > 0:  # timed from the epoch's start, so across the measurement
            timed_seconds -= measuring
        if not self._finite(loss_sum):
            raise TrainingDiverged(f"loss is {loss_sum.item()} at epoch {epoch + 1}")
        example_info = self.pruner.end_epoch(epoch)
        in_sync = self._examples_in_sync()
        _sync(self.device)
        seconds = time.perf_counter() - start - measuring
        total_images = images * self.world
        keeps = self.epoch_keeps(epoch)
        token_keep = sum(k[0] for k in keeps) / len(keeps)
        attention_keep = sum(k[1] for k in keeps) / len(keeps)
        flops_per_image = self.epoch_flops(epoch, 1)
        return {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / steps,
            "train_seconds": seconds,
            "images": total_images,
            "images_per_second": timed_images * self.world / timed_seconds if timed_seconds > 0 else None,
            "token_keep": token_keep,
            "attention_keep": attention_keep,
            "active_examples": plan.num_active,
            "next_active_examples": example_info["active"],
            "swapped": example_info.get("swapped", 0),
            "examples_in_sync": in_sync,
            "flops_per_image": flops_per_image,
            "train_flops": flops_per_image * total_images,
            "time_ratio": self.epoch_time_ratio(epoch),  # step time vs dense's, paired (core/paired.py)
            "paired_seconds": measuring,
            "lr": lr_at(cfg, (epoch + 1) / cfg.epochs),
        }

    def train_step(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, progress: float,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
        """One optimisation step on a batch (images, own labels, dataset indices) at training
        progress `progress` in [0, 1): the scheduled keeps and lr, Mixup/CutMix, loss, gradient
        clipping, EMA, and the example statistics. Returns the (detached) batch loss."""
        cfg = self.config
        set_keep(self.model, *self.keeps(progress))
        lr = lr_at(cfg, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        idx = idx.to(self.device, non_blocking=True)
        target, smoothing = y, cfg.label_smoothing
        if self.mixup is not None and len(y) % 2 == 0:  # timm's Mixup pairs the batch with itself reversed
            x, target = self.mixup(x, y)
            smoothing = 0.0  # already in the soft target
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype != torch.float32):
            logits = self.net(x)
            # per example (InfoBatch's weights, the pruner's losses); soft targets are
            # cross_entropy's class-probability form, what timm's SoftTargetCrossEntropy computes
            per_example = F.cross_entropy(logits.float(), target, label_smoothing=smoothing, reduction="none")
        loss = (per_example * weights[idx]).mean() if weights is not None else per_example.mean()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # float16: scaled loss, unscaled gradients before clipping
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.steps_done += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.steps_done)
        self.pruner.record(idx, logits.argmax(dim=1) == y, per_example)
        return loss.detach()

    def _finite(self, loss_sum: torch.Tensor) -> bool:
        """Finite on every rank (all ranks must stop together, or the next collective hangs)."""
        if self.world > 1:
            flag = (~torch.isfinite(loss_sum)).to(torch.float32).reshape(1)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return flag.item() == 0
        return bool(torch.isfinite(loss_sum))

    def _examples_in_sync(self) -> bool:
        """Every rank must hold the same active examples (statistics are all-reduced); check it."""
        if self.world == 1:
            return True
        active = self.pruner.active
        mine = torch.stack([active.sum(), (active * torch.arange(len(active), device=active.device)).sum()])
        mine = mine.to(torch.float64).cpu() if self.device.type == "cpu" else mine.to(torch.float64)
        gathered = [torch.zeros_like(mine) for _ in range(self.world)]
        dist.all_gather(gathered, mine)
        if not all(torch.equal(g, gathered[0]) for g in gathered):
            raise RuntimeError("ranks disagree on the active training examples")
        return True

    @torch.no_grad()
    def evaluate(self) -> dict:
        model = self.ema.module if self.ema is not None else self.model
        set_keep(model, *self.eval_keeps())
        self.net.eval()
        if self._val_loader is None:
            self._val_loader = self._loader(self.val_set, batch_size=self.config.batch_size * 2)
        loader = self._val_loader
        correct = torch.zeros((), device=self.device)
        loss = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        for i, (x, y) in enumerate(loader):
            if i % self.world != self.rank:
                continue
            x, y = x.to(self.device), y.to(self.device)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype != torch.float32):
                logits = model(x).float()
            correct += (logits.argmax(1) == y).sum()
            loss += F.cross_entropy(logits, y, reduction="sum")
            count += len(y)
        if self.world > 1:
            for t in (correct, loss, count):
                dist.all_reduce(t)
        n = max(1.0, count.item())
        return {"val_acc": correct.item() / n, "val_loss": loss.item() / n}

    def metrics(self, status: str = RUNNING) -> RunMetrics:
        """Run summary: what metrics.json holds and what the search reports."""
        h = self.history
        seconds = sum(r["train_seconds"] for r in h)
        images = sum(r["images"] for r in h)
        flops = sum(r["train_flops"] for r in h)
        rates = [r["images_per_second"] for r in h if r["images_per_second"]]
        planned = self.planned_train_flops()
        expected = self.expected_train_flops()
        paired_cost = self.paired_cost()
        return RunMetrics(**{
            "status": status,
            "epochs": len(h),
            "val_acc": h[-1]["val_acc"] if h else None,
            "train_seconds": seconds,
            "projected_seconds": seconds * planned / flops if flops > 0 else None,
            "images_per_second": sum(rates) / len(rates) if rates else None,
            "flops_per_image": flops / images if images else None,
            "train_flops": flops,
            "planned_train_flops": planned,
            "expected_train_flops": expected,
            "flops_speedup": self.expected_train_flops(dense=True) / expected,
            # the full run's cost against dense's, timed in pairs inside this run (core/paired.py)
            "paired_cost": paired_cost,
            "paired_speedup": 1.0 / paired_cost if paired_cost else None,
            "paired_seconds": self.paired.seconds,  # spent measuring, not in train_seconds
            # CPU: the measuring thread's share of a core while it timed (well below 1: a shared CPU)
            "paired_cpu_share": self.paired.cpu_share,
            "paired_ratios": {f"{k[0]:g}/{k[1]:g}": self.paired.ratio(k) for k in self.paired.ratios},
            "peak_memory_mb": _peak_memory_mb(self.device),
            "world_size": self.world,
            "device": str(self.device),
            "workers": self.workers,
            "img_size": self.img_size,
            "patch_size": self.patch_size or self.model.patch_embed.patch_size[0],
            "num_train": len(self.train_set),
            "num_val": len(self.val_set),
            "chance_acc": self.chance_acc,
            "history": list(h),
            "config": self.config.to_dict(),
        })

    # -- checkpoints ----------------------------------------------------------------------------
    def _rng_state(self) -> dict:
        """This process's generators, as tensors and ints (loadable with weights_only=True): torch's
        CPU and CUDA, numpy's (Mixup's lambda) and python's (timm's augmentations)."""
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, py_state, py_gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                      "gauss": float(gauss)},
            "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
        }

    def _set_rng_state(self, state: dict) -> None:
        torch.set_rng_state(state["torch"].cpu())
        if state.get("cuda") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"].cpu(), self.device)
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))

    def _gather_rng_states(self) -> list[dict]:
        """Every rank's generator states, in rank order (rank 0 writes them into the checkpoint)."""
        mine = self._rng_state()
        if self.world == 1:
            return [mine]
        states: list = [None] * self.world
        dist.all_gather_object(states, mine)
        return states

    def checkpoint(self, path: str | Path) -> bool:
        """Save a checkpoint with every rank's generators. A collective under DDP: every rank calls
        it, rank 0 writes `path` and returns True (the other ranks write nothing, return False)."""
        rng_states = self._gather_rng_states()
        if self.rank == 0:
            self.save_checkpoint(path, rng_states)
        return self.rank == 0

    def save_checkpoint(self, path: str | Path, rng_states: list[dict] | None = None) -> None:
        """Everything a resumed run needs: weights, optimizer, pruner, EMA, progress, and every rank's
        random generators (`rng_states`, from `_gather_rng_states`; this process's alone if None)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "pruner": self.pruner.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "steps_done": self.steps_done,
            "paired": self.paired.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "rng": torch.get_rng_state(),  # rank 0's torch CPU state, as checkpoints before rng_states held
            "rng_states": rng_states if rng_states is not None else [self._rng_state()],
            "config": self.config.to_dict(),
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same run (epochs, device, workers and output may differ)."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # a truncated or foreign file
            raise UserError(f"cannot resume from {path}: not a valid checkpoint ({type(exc).__name__})") from None
        stored, current = state.get("config") or {}, self.config.to_dict()
        # A key missing from the stored config is a field added since (its old behaviour is its "off" value).
        changed = [k for k in current if k not in ("epochs", "device", "workers", "output", "speed_pairs")
                   and stored.get(k, current[k]) != current[k]]
        if changed:
            raise UserError(f"cannot resume from {path}: it is a different run ({', '.join(changed)} differ)")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.pruner.load_state_dict(state["pruner"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] or {})
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.steps_done = int(state.get("steps_done", 0))
            self.paired.load_state_dict(state.get("paired"))
            self.epoch = int(state["epoch"])
            self.history = list(state["history"])
            rng_states = state.get("rng_states")
            if rng_states and len(rng_states) == self.world:
                self._set_rng_state(rng_states[self.rank])
            else:  # an older checkpoint, or another world size: rank 0's torch CPU state, as before
                torch.set_rng_state(state["rng"].cpu())
        except (KeyError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot resume from {path}: {str(exc).splitlines()[0]}") from None


def train(config: RunConfig, callback=None, resume: bool = False) -> RunMetrics:
    """Train `config` (resuming from OUTPUT/checkpoint.pt when asked and present); returns metrics."""
    checkpoint = Path(config.output) / CHECKPOINT if config.output else None
    if resume and (checkpoint is None or not checkpoint.exists()):
        raise UserError(f"nothing to resume: no {CHECKPOINT} in {config.output or 'the output directory'} (pass the run's --output)")
    trainer = Trainer(config, callback)
    try:
        if resume:
            trainer.load_checkpoint(checkpoint)
        metrics = trainer.fit()
        if trainer.owns_process_group and dist.is_initialized():
            # Every rank done with its collectives before any tears its connections down: a rank that
            # exits first can abort the other's gloo threads (below), seen in 2 of about 40 test runs.
            dist.barrier()
        return metrics
    finally:
        if trainer.owns_process_group and dist.is_initialized():
            # Exiting with gloo's threads alive can abort a rank (SIGABRT, "terminate called
            # without an active exception"); shut down the group we started, never a caller's.
            dist.destroy_process_group()


def _init_distributed(device: torch.device) -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():  # a caller's group (Ray Train starts its own)
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)
