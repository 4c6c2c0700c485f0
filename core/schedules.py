"""Keep-ratio schedules over training progress p in [0, 1].

Two families, both moving between 1.0 (dense) and the target keep r:
- `warmup_cosine` (Tri-Level E-ViT): 1.0 during warm-up, cosine 1.0 -> r, then r. Ends sparse, and
  the model is evaluated at r.
- `linear`, `cosine`, `cyclic` (Patch Sampling Schedule, as PSS's `patch_scheduler.py`): linear
  and cosine ramp from r up to 1 - `schedule_end_drop`; cyclic is a triangle r -> 1 - end drop -> r
  within every epoch (PSS's `CyclicPatchScheduler`; `schedule_cycles` sets another number of
  triangles over the run). As PSS, the drop ratio is interpolated between its start (1 - r) and end
  values, clamped to [0, 1] and only then rounded: an end drop below 0 (PSS's DeiT scripts: -0.1)
  makes the steps around each triangle's top dense. All three are dense for the last
  `schedule_cooldown` of training (PSS's cooldown epochs), and the model is evaluated on all tokens.
- `constant`: r throughout.

`schedule_step` rounds as PSS does: the *drop* ratio 1 - keep to the nearest multiple of the step,
with Python's round (half to even), `round(drop * 5) / 5` for PSS's 0.2.
"""

from __future__ import annotations

import math

from .config import SparsityConfig


PSS_FAMILY = ("linear", "cosine", "cyclic")  # dense for the final schedule_cooldown of training


def keep_at(config: SparsityConfig, target: float, progress: float, epochs: int | None = None) -> float:
    """Scheduled keep ratio at `progress` (fraction of training done) for a target keep `target`.

    `epochs` (the run's length) places `cyclic`'s per-epoch triangles; without it a cyclic schedule
    with `schedule_cycles` unset has one triangle over the whole run.
    """
    if target >= 1.0:
        return 1.0
    p = min(max(progress, 0.0), 1.0)
    name = config.schedule
    ramp = p  # progress through the scheduled part (the PSS family ends with a dense cooldown)
    top = 1.0  # the keep the schedule moves towards (above 1.0: clamped, PSS's negative end drop)
    if name in PSS_FAMILY:
        active = 1.0 - config.schedule_cooldown
        # The cooldown starts at PSS's iteration (epochs - cooldown) x steps: in floats, 2/3 of
        # training can fall just below 1 - 1/3, which would leave its first step sparse.
        if p >= active - 1e-9:
            return 1.0
        ramp = p / active
        top = 1.0 - config.schedule_end_drop
    if name == "constant":
        value = target
    elif name == "warmup_cosine":
        warmup, decay = config.schedule_warmup, config.schedule_decay
        if p < warmup:
            value = 1.0
        elif decay <= 0 or p >= warmup + decay:
            value = target
        else:
            t = (p - warmup) / decay
            value = target + (1.0 - target) * 0.5 * (1.0 + math.cos(math.pi * t))
    elif name == "linear":
        value = target + (top - target) * ramp
    elif name == "cosine":
        value = target + (top - target) * 0.5 * (1.0 - math.cos(math.pi * ramp))
    elif name == "cyclic":
        if config.schedule_cycles:
            phase = (ramp * config.schedule_cycles) % 1.0
        elif epochs:
            phase = (p * epochs) % 1.0  # one triangle per epoch, as PSS's CyclicPatchScheduler
        else:
            phase = ramp
        value = target + (top - target) * (1.0 - abs(2.0 * phase - 1.0))
    else:  # validated in SparsityConfig
        raise ValueError(name)
    value = min(1.0, max(value, 0.0))  # PSS clamps the drop ratio to [0, 1] before rounding it
    step = config.schedule_step
    if step > 0:
        per = 1.0 / step  # 5.0 for PSS's 0.2: round(drop * 5) / 5 exactly as its code
        value = 1.0 - round((1.0 - value) * per) / per
        value = min(1.0, max(value, 0.0))
    return value


def epoch_keep_points(config: SparsityConfig, epoch: int, epochs: int) -> list[float]:
    """Progress points whose keeps average to an epoch's cost: the epoch's midpoint, or 8 evenly
    spaced points when the keep moves within the epoch (per-epoch cyclic triangles), where the
    midpoint alone (keep 1.0 at the triangle's apex) would misstate the epoch's FLOPs."""
    within = config.schedule == "cyclic" and (config.schedule_cycles or epochs) >= epochs
    points = 8 if within else 1
    return [(epoch + (i + 0.5) / points) / epochs for i in range(points)]


def settled_at(config: SparsityConfig) -> float:
    """Fraction of training after which the scheduled keep ratio behaves as it will for the rest.

    Accuracy measured before this point reflects a model that has barely started pruning, so an
    early-stopping rung placed earlier ranks configurations by speed alone (measured on the digits
    grid: rank correlation 0.13 between epoch-1 and final accuracy, 0.75 at epoch 3).
    `warmup_cosine`: end of warm-up + decay; `cyclic`: end of the first triangle (per-epoch
    triangles repeat from the start: 0); `linear`/`cosine` only reach 1.0 at the end; `constant` is
    settled from the start.
    """
    name = config.schedule
    if name == "warmup_cosine":
        return min(1.0, config.schedule_warmup + config.schedule_decay)
    if name == "cyclic":
        return 1.0 / config.schedule_cycles if config.schedule_cycles else 0.0
    if name in ("linear", "cosine"):
        return 1.0
    return 0.0


def mean_keep(config: SparsityConfig, target: float, epochs: int | None = None, points: int = 1000) -> float:
    """Average scheduled keep over training (midpoint rule): what the schedule costs on average."""
    return sum(keep_at(config, target, (i + 0.5) / points, epochs) for i in range(points)) / points
