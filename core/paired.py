"""Speed as a paired ratio measured inside the run: this run's training step against dense's, timed
alternately in the same process, on the same device, on the same batch, at the same moment.

Why: wall-clock seconds of two trials are only comparable when the machine did the same other work
during both. On a shared laptop, a busy node or a cluster with mixed GPU types they are not (a digits
trial run beside other work reported 7.66x for keeps 0.77 / 0.71). Anything that slows the machine
down slows both halves of a pair alike, so their ratio stays; the ratio of two runs' seconds does
not.

How: whenever the run reaches keep ratios it has not measured yet (a few points of the keep
schedule: each distinct (token, attention) keep, to `KEY_STEP`), it times a short burst of training
steps on the epoch's first batch: `pairs` pairs of one step at the current keeps and one step
dense, the order alternating (ABBA) so a drift in machine load hits both sides alike (one untimed
dense step warms the shadow up before its first burst). A keep the run stays at is timed again on
the first batch of each of its next epochs, up to `BURSTS` bursts: its ratio is the median of all
its pairs, taken at different moments, so one disturbed burst does not decide the keep that weighs
most in the run's cost (the settled keep; measured on digits, 2 cores, beside two busy processes: a
single burst of 3 pairs timed keep 0.7 at 0.849 against 0.801 idle; BENCHMARKS.md, "Paired speed").
A keep the schedule passes through in one epoch is timed once; its weight in the cost is small.

On a GPU each step is timed on the wall clock after synchronising the device. On a CPU each step runs
on one thread and is timed in that thread's CPU time (`time.thread_time`): time spent waiting for a
core while other processes run does not count. Wall-clock pairs on a CPU do not survive a busy
machine: with torch's threads synchronising on oversubscribed cores, every step waits at every
barrier whatever its size, and the ratio collapses towards 1 (measured on digits, 2 cores: keep 0.7
timed 1.19x alone and 1.02x beside two spinning processes; BENCHMARKS.md, "Paired speed").

The steps run on a *shadow* of the model (the trainer's own copy, also used for FLOP counting) with
its own optimizer of the same kind at learning rate 0 (the same arithmetic, weights unchanged), and
inside `torch.random.fork_rng`, so the trained model, its optimizer and every random generator are
exactly as they would be without the measurement: training is bit-identical with or without it
(tests/test_paired.py). A step's cost does not depend on the weights' values: top-k keeps a fixed
count, masks are dense booleans.

A run's `paired_cost` is its training cost as a fraction of dense's at the same length on the full
training set: the sum over epochs of (examples visited / all examples) x the epoch's step-time ratio,
over the number of epochs. Epochs not yet trained use the pruner's plan; keeps not yet measured use
the FLOPs ratio scaled by the last measured time/FLOPs ratio (the search's early-stopping rungs sit
after the schedule has settled, where every keep is measured). `paired_speedup` = 1 / `paired_cost`.

What it leaves out, by design: data loading (the same per image for both, so example pruning's
saving is counted through the examples visited), evaluation, and under data parallelism the gradient
all-reduce (the shadow is not wrapped in DDP).

Written by hand: no library times two model variants against each other inside a training run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .patch import set_keep

KEY_STEP = 0.02  # keeps closer than this share one measurement
BURSTS = 3  # a keep still in use is timed in up to this many epochs' bursts, all pooled


def keep_key(token_keep: float, attention_keep: float) -> tuple[float, float]:
    """The measurement a keep pair falls in (rounded to KEY_STEP; 1.0 stays 1.0)."""
    return (round(round(token_keep / KEY_STEP) * KEY_STEP, 4), round(round(attention_keep / KEY_STEP) * KEY_STEP, 4))


@dataclass
class PairedTimer:
    """Times training steps of `shadow` at given keeps against dense, in pairs (see the module).

    `make_optimizer(model)` builds the run's optimizer kind for the shadow; `sync()` waits for the
    device (a GPU's queued kernels) before a clock is read.
    """

    shadow: nn.Module
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    device: torch.device
    amp_dtype: torch.dtype
    sync: Callable[[], None]
    pairs: int  # RunConfig.speed_pairs (0: off)
    clip_grad: float = 0.0  # the run's gradient clipping, part of its step
    ratios: dict[tuple[float, float], list[float]] = field(default_factory=dict)  # key -> pair ratios
    seconds: float = 0.0  # time spent measuring (not training)
    step_cpu: float = 0.0  # CPU time of the timed steps' thread (CPU runs) ...
    step_wall: float = 0.0  # ... and their wall time: `cpu_share`
    _optimizer: torch.optim.Optimizer | None = None

    @property
    def enabled(self) -> bool:
        return self.pairs > 0

    @property
    def _gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def cpu_share(self) -> float | None:
        """On a CPU: the share of the timed steps' wall time their thread spent on a core. Near 1, the
        core was the run's own while it measured; well below (e.g. 0.5 beside two busy processes on
        2 cores), other work shared it, and the pairs' ratios then moved by up to 5% on the
        project's 2-core machine (BENCHMARKS.md, "Paired speed"). None on a GPU or before a step."""
        if self._gpu or self.step_wall <= 0:
            return None
        return self.step_cpu / self.step_wall

    def ratio(self, key: tuple[float, float]) -> float | None:
        """Measured step-time ratio (this keep / dense) for a key; exactly 1.0 for dense."""
        if key == (1.0, 1.0):
            return 1.0
        values = self.ratios.get(key)
        return statistics.median(values) if values else None

    def needs(self, keeps: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """The distinct keeps among `keeps` whose key has fewer than `BURSTS` bursts measured."""
        out, seen = [], set()
        for k in keeps:
            key = keep_key(*k)
            if key != (1.0, 1.0) and len(self.ratios.get(key, ())) < BURSTS * self.pairs and key not in seen:
                seen.add(key)
                out.append(k)
        return out

    def measure(self, x: torch.Tensor, y: torch.Tensor, keeps: list[tuple[float, float]]) -> None:
        """Measure every keep in `keeps` on the batch (x, y), leaving all training state untouched."""
        if not self.enabled or not keeps:
            return
        start = time.perf_counter()
        threads = torch.get_num_threads()
        if not self._gpu:
            torch.set_num_threads(1)  # one thread, timed in its own CPU time (see the module)
        try:
            self._measure(x, y, keeps)
        finally:
            torch.set_num_threads(threads)
        self.seconds += time.perf_counter() - start

    def _measure(self, x, y, keeps) -> None:
        with torch.random.fork_rng(devices=[self.device] if self._gpu else []):
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            self.shadow.train()
            if self._optimizer is None:  # first measurement: the shadow's optimizer, dense warmed up
                self._optimizer = self.make_optimizer(self.shadow)
                for group in self._optimizer.param_groups:
                    group["lr"] = 0.0  # the same arithmetic as training, the shadow's weights unchanged
                self._step(x, y, (1.0, 1.0))
            for keep in keeps:  # a cold first step at new shapes is one pair of several: the median absorbs it
                values = []
                for i in range(self.pairs):
                    order = (keep, (1.0, 1.0)) if i % 2 == 0 else ((1.0, 1.0), keep)
                    times = {k: self._step(x, y, k) for k in order}
                    values.append(times[keep] / times[(1.0, 1.0)])
                self.ratios.setdefault(keep_key(*keep), []).extend(values)

    def _step(self, x: torch.Tensor, y: torch.Tensor, keep: tuple[float, float]) -> float:
        """One timed training step of the shadow at `keep`: forward, loss, backward, gradient
        clipping as the run, optimizer step."""
        set_keep(self.shadow, *keep)
        self.sync()
        clock = time.perf_counter if self._gpu else time.thread_time
        wall = time.perf_counter()
        start = clock()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype != torch.float32):
            loss = F.cross_entropy(self.shadow(x).float(), y)
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad:
            nn.utils.clip_grad_norm_(self.shadow.parameters(), self.clip_grad)
        self._optimizer.step()
        self.sync()
        took = clock() - start
        if not self._gpu:
            self.step_cpu += took
            self.step_wall += time.perf_counter() - wall
        return took

    def state_dict(self) -> dict:
        return {"ratios": {f"{k[0]},{k[1]}": list(v) for k, v in self.ratios.items()}, "seconds": self.seconds,
                "step_cpu": self.step_cpu, "step_wall": self.step_wall}

    def load_state_dict(self, state: dict | None) -> None:
        """Measurements of an earlier attempt of the run (a resumed run keeps them)."""
        if not state:
            return
        self.ratios = {tuple(float(p) for p in k.split(",")): [float(r) for r in v]
                       for k, v in (state.get("ratios") or {}).items()}
        self.seconds = float(state.get("seconds") or 0.0)
        self.step_cpu = float(state.get("step_cpu") or 0.0)
        self.step_wall = float(state.get("step_wall") or 0.0)
