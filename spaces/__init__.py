"""Search spaces over the joint (example, token, attention) keep ratios.

A space is Optuna distributions for the varied `SparsityConfig` fields plus fixed values for the
rest; every sampled point becomes a valid `SparsityConfig` through `SearchSpace.to_sparsity`.

Built-in spaces, and the papers' settings (spaces/papers.py) each can express exactly:
- `tri-level` (default): example keep [0.5, 1], token keep [0.5, 1] at the attentive blocks,
  attention keep [0.1, 1], the paper's warm-up + cosine schedule. Holds Tri-Level's DeiT-T setting.
- `pss`: input patch dropping (Patch Sampling Schedule) with schedule type, sampling and minimum keep
  [0.2, 1], PSS's 0.2 rounding and end drop -0.1. Holds PSS's cyclic DeiT setting.
- `full`: the tri-level ratios (token keep from 0.4) plus criteria, token mode, fusion and schedule as
  categorical choices. Holds Tri-Level's, EViT's and InfoBatch's settings.

A sampled keep within `SNAP` of its range's edge is set to the edge (`SearchSpace.snap`): a
continuous sampler essentially never draws an edge exactly, and the edges are where the papers'
single-level settings live (every other keep at exactly 1.0, InfoBatch's 0.5, PSS's 0.2).

A custom space is a YAML file:

    base: tri-level          # optional: start from a built-in space
    params:
      example_keep: {low: 0.6, high: 1.0}
      example_criterion: {choices: [forgetting, loss]}
    fixed:
      schedule: constant
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from trilevel.core.config import SparsityConfig, safe_yaml
from trilevel.core.errors import UserError, suggest

RATIOS = ("example_keep", "token_keep", "attention_keep")
SNAP = 0.01  # a sampled value this close to its range's low or high end is set to that end


@dataclass
class SearchSpace:
    name: str
    params: dict[str, BaseDistribution]
    fixed: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        valid = [f.name for f in fields(SparsityConfig)]
        for key in list(self.params) + list(self.fixed):
            if key not in valid:
                raise UserError(f"space {self.name!r}: unknown parameter {key!r}{suggest(key, valid)}")
        both = set(self.params) & set(self.fixed)
        if both:
            raise UserError(f"space {self.name!r}: {sorted(both)} both searched and fixed")
        for key, dist in self.params.items():
            if key in RATIOS and isinstance(dist, FloatDistribution) and not (0 < dist.low <= dist.high <= 1):
                raise UserError(f"space {self.name!r}: {key} range must lie in (0, 1], got [{dist.low}, {dist.high}]")
        self.to_sparsity(self.dense_point())  # every fixed value and choice must form a valid config

    def snap(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` with every float within `SNAP` of its range's edge set to the edge."""
        out = dict(params)
        for key, dist in self.params.items():
            if isinstance(dist, FloatDistribution) and isinstance(out.get(key), float):
                if out[key] - dist.low <= SNAP:
                    out[key] = dist.low
                elif dist.high - out[key] <= SNAP:
                    out[key] = dist.high
        return out

    def paper_points(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, point) for each paper setting (spaces/papers.py) this space expresses exactly: every
        field the paper sets is searched here with the paper's value in range, or fixed to it, or left
        at its default; and every field the space fixes or searches that the paper does not set takes
        the value the paper runs with (its default)."""
        from .papers import PAPERS

        default = SparsityConfig().to_dict()
        out = []
        for paper in PAPERS:
            wanted = paper.config().to_dict()
            point, fits = {}, True
            for key, value in wanted.items():
                dist = self.params.get(key)
                if dist is not None:
                    inside = (dist.low - 1e-12 <= value <= dist.high + 1e-12 if isinstance(dist, FloatDistribution)
                              else value in dist.choices)
                    fits = fits and inside
                    point[key] = value
                elif key in self.fixed:
                    fits = fits and self.fixed[key] == value
                else:
                    fits = fits and default[key] == value
            if fits:
                out.append((paper.name, point))
        return out

    def to_sparsity(self, params: dict[str, Any]) -> SparsityConfig:
        """The SparsityConfig for one sampled point (fixed values + sampled values)."""
        return SparsityConfig(**{**self.fixed, **params})

    def dense_point(self) -> dict[str, Any]:
        """The point with every searched keep ratio at 1.0: the reference every speedup is against."""
        point = {}
        for key, dist in self.params.items():
            if isinstance(dist, FloatDistribution):
                if key in RATIOS and dist.high < 1.0:
                    raise UserError(f"space {self.name!r}: {key} range must include 1.0 so the dense baseline is in the space")
                point[key] = 1.0 if key in RATIOS else dist.low
            else:
                default = getattr(SparsityConfig(), key)
                point[key] = default if default in dist.choices else dist.choices[0]
        return point

    def settled_at(self) -> float:
        """Latest point (fraction of training) at which any configuration of the space has its keep
        schedule settled; the search places its first early-stopping rung after it."""
        from trilevel.core.schedules import settled_at

        point = self.dense_point()
        for key, dist in self.params.items():  # searched warm-up/decay: their longest values
            if isinstance(dist, FloatDistribution) and key not in RATIOS:
                point[key] = dist.high
        dist = self.params.get("schedule")
        schedules = list(dist.choices) if isinstance(dist, CategoricalDistribution) else [point.get("schedule")]
        return max(settled_at(self.to_sparsity({**point, **({"schedule": s} if s else {})}))
                   for s in schedules)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description (stored in the run directory, compared on --resume)."""
        out = {}
        for key, dist in self.params.items():
            if isinstance(dist, FloatDistribution):
                out[key] = {"low": dist.low, "high": dist.high}
            else:
                out[key] = {"choices": list(dist.choices)}
        return {"name": self.name, "params": out, "fixed": dict(self.fixed)}


def _uniform(low: float, high: float = 1.0) -> FloatDistribution:
    return FloatDistribution(low, high)


def _builtin() -> dict[str, SearchSpace]:
    return {
        "tri-level": SearchSpace(
            "tri-level",
            {"example_keep": _uniform(0.5), "token_keep": _uniform(0.5), "attention_keep": _uniform(0.1)},
            {"example_criterion": "forgetting", "token_mode": "attentive", "schedule": "warmup_cosine"},
        ),
        "pss": SearchSpace(
            "pss",
            {
                "token_keep": _uniform(0.2),
                "schedule": CategoricalDistribution(["linear", "cosine", "cyclic", "constant"]),
                "token_sampling": CategoricalDistribution(["random", "magnitude"]),
            },
            {"token_mode": "input", "schedule_step": 0.2, "schedule_end_drop": -0.1},
        ),
        "full": SearchSpace(
            "full",
            {
                "example_keep": _uniform(0.5),
                "example_criterion": CategoricalDistribution(["forgetting", "loss", "random"]),
                "token_keep": _uniform(0.4),
                "token_mode": CategoricalDistribution(["attentive", "input"]),
                "token_fuse": CategoricalDistribution([False, True]),
                "attention_keep": _uniform(0.1),
                "schedule": CategoricalDistribution(["warmup_cosine", "constant", "linear", "cosine", "cyclic"]),
            },
        ),
    }


SPACES = tuple(_builtin())  # the built-in names
_REGISTRY: dict[str, SearchSpace] = _builtin()


def register_space(space: SearchSpace, *, replace: bool = False) -> None:
    """Make `space` usable by its name (`--space NAME`, `SearchOptions(space=NAME)`, a space file's
    `base:`) in this process."""
    if space.name in _REGISTRY and not replace:
        raise ValueError(f"space {space.name!r} is already registered (pass replace=True to override it)")
    _REGISTRY[space.name] = space


def list_spaces() -> tuple[str, ...]:
    """Registered space names, the built-ins first."""
    return tuple(_REGISTRY)


def load_space(name_or_path: str) -> SearchSpace:
    """A registered space by name, or a custom one from a YAML file."""
    builtin = dict(_REGISTRY)
    if name_or_path in builtin:
        return builtin[name_or_path]
    path = Path(name_or_path)
    if not path.suffix in (".yaml", ".yml") and not path.exists():
        raise UserError(f"unknown space {name_or_path!r}{suggest(name_or_path, builtin)}; "
                        f"use {', '.join(builtin)} or a YAML file")
    if not path.is_file():
        raise UserError(f"space file not found: {path}")
    data = safe_yaml(path.read_text(), f"space file {path}")
    if not isinstance(data, dict):
        raise UserError(f"space file {path} must be a mapping with 'params' (and optional 'base', 'fixed')")
    unknown = set(data) - {"base", "params", "fixed"}
    if unknown:
        key = sorted(unknown)[0]
        raise UserError(f"space file {path}: unknown key {key!r}{suggest(key, ['base', 'params', 'fixed'])}")
    params, fixed = {}, {}
    if data.get("base") is not None:
        if data["base"] not in builtin:
            raise UserError(f"space file {path}: unknown base {data['base']!r}; use {', '.join(builtin)}")
        params, fixed = dict(builtin[data["base"]].params), dict(builtin[data["base"]].fixed)
    for key, spec in (data.get("params") or {}).items():
        fixed.pop(key, None)
        params[key] = _distribution(path, key, spec)
    for key, value in (data.get("fixed") or {}).items():
        params.pop(key, None)
        fixed[key] = value
    if not params:
        raise UserError(f"space file {path}: no parameters to search")
    return SearchSpace(path.stem, params, fixed)


def _distribution(path: Path, key: str, spec: Any) -> BaseDistribution:
    if isinstance(spec, dict) and set(spec) == {"choices"} and isinstance(spec["choices"], list) and spec["choices"]:
        return CategoricalDistribution(spec["choices"])
    if isinstance(spec, dict) and set(spec) == {"low", "high"}:
        low, high = spec["low"], spec["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise UserError(f"space file {path}: {key} needs numbers low <= high, got {spec}")
        return FloatDistribution(float(low), float(high))
    raise UserError(f"space file {path}: {key} must be {{low: L, high: H}} or {{choices: [...]}}, got {spec!r}")


__all__ = ["SPACES", "SearchSpace", "list_spaces", "load_space", "register_space"]
