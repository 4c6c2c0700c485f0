"""Multi-objective asynchronous successive halving (MO-ASHA, Schmucker et al. 2021).

Neither Ray Tune nor Optuna can stop trials early on several objectives at once, so this
module provides it in two layers:

* :class:`MOASHA` holds the rung bookkeeping and the decision rule. It is plain Python +
  numpy, deterministic, and its state is a JSON-serialisable dict, so a replay harness can
  feed it results from a table and get exactly the decisions a live search made. (The module
  still imports ``ray.tune.schedulers``, ~1 s, for the scheduler's base class.)
* :class:`MOASHAScheduler` adapts it to Ray Tune's ``TrialScheduler`` hooks and persists the
  state to a JSON file, because Tune restores schedulers from ``tuner.pkl`` with their
  *initial* state on ``Tuner.restore``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from trilevel.core.atomic import atomic_write_text

from trilevel.reports.pareto import nondominated_fronts

logger = logging.getLogger(__name__)

CONTINUE = "continue"
STOP = "stop"
_TIE_BREAKS = ("crowding", "epsnet")
_STATE_VERSION = 1
_FILE_FORMAT = "trilevel.moasha"


class MOASHA:
    """Asynchronous successive halving that ranks objective vectors by Pareto dominance.

    Rungs are the integer milestones ``ceil(grace_period * reduction_factor**k)`` that are
    ``< max_t`` (``max_t=9, grace_period=1, reduction_factor=3`` gives ``[1, 3]``).

    Decision rule of :meth:`on_result` (``trial_id`` reports ``values`` at time ``t``):

    1. A trial that this object already stopped gets ``"stop"`` again, nothing is recorded.
    2. ``t >= max_t``: the trial is complete, ``"continue"`` (its trainer ends by itself);
       nothing is recorded.
    3. Otherwise let ``r`` be the highest rung milestone ``<= t`` that lies above every rung the
       trial is already recorded at. If there is none (``t`` is not at/past a new rung):
       ``"continue"``. A trial that jumps over several rungs is recorded at the highest one
       only, as in Ray's ASHA.
    4. Record the objective vector at rung ``r``; ``n`` = number of vectors recorded there
       (every trial that ever reached it, including stopped and finished ones).
    5. If ``n < reduction_factor``: ``"continue"`` (with one or two points everything ties, so
       nobody is stopped until the rung holds at least ``reduction_factor`` vectors).
    6. Otherwise order all ``n`` vectors and ``"continue"`` iff the trial's position (0-based)
       is ``< ceil(n / reduction_factor)``, else ``"stop"``. The ordering is:

       * objectives are turned into minimisation (``"max"`` ones are negated);
       * vectors with any NaN/inf value are the worst: they come after all finite vectors,
         among themselves in recording order;
       * finite vectors are split into fronts by non-dominated sorting (front 0 first); with
         ``epsilon`` (objective -> tolerance, e.g. the dense seeds' accuracy spread), differences
         within the tolerance are ties (additive epsilon-dominance, see ``pareto.dominance_matrix``);
       * inside a front, each objective is scaled to [0, 1] over that front, then
         ``tie_break="crowding"`` orders by NSGA-II crowding distance, largest first (the
         extreme points of each objective get infinity), and ``tie_break="epsnet"`` orders
         greedily as an epsilon-net (Salinas et al. 2021, as in Syne Tune): start with the
         base-order first point, then repeatedly take the point farthest (Euclidean) from all
         points taken so far;
       * remaining ties, and the base order, are lexicographic on the minimisation vector
         (first objective first, so list the primary objective first), then recording order.

    :meth:`on_complete` only marks the trial finished; its recorded rung values stay, so later
    trials are still compared against it (as in ASHA).
    """

    def __init__(
        self,
        objectives: Mapping[str, str],
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        tie_break: str = "crowding",
        epsilon: Mapping[str, float] | None = None,
    ):
        if not objectives:
            raise ValueError("MOASHA needs at least one objective")
        bad = {k: m for k, m in objectives.items() if m not in ("min", "max")}
        if bad:
            raise ValueError(f"objective modes must be 'min' or 'max', got {bad}")
        if grace_period <= 0:
            raise ValueError(f"grace_period must be > 0, got {grace_period}")
        if max_t < grace_period:
            raise ValueError(f"max_t ({max_t}) must be >= grace_period ({grace_period})")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        if tie_break not in _TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {_TIE_BREAKS}, got {tie_break!r}")
        self.objectives: dict[str, str] = dict(objectives)
        self.max_t = max_t
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        self.tie_break = tie_break
        self.epsilon = {k: float(v) for k, v in (epsilon or {}).items() if v}
        unknown = set(self.epsilon) - set(self.objectives)
        if unknown or any(not (v > 0 and math.isfinite(v)) for v in self.epsilon.values()):
            raise ValueError(f"epsilon must map objectives to non-negative numbers, got {epsilon}")
        self.rungs: list[int] = _milestones(max_t, grace_period, reduction_factor)
        self._signs = np.array([-1.0 if m == "max" else 1.0 for m in self.objectives.values()])
        self._eps = np.array([self.epsilon.get(k, 0.0) for k in self.objectives])
        # rung milestone -> {trial_id: raw values in objective order, None for NaN/inf};
        # dicts keep recording order, which is the last tie-break.
        self._recorded: dict[int, dict[str, list[float | None]]] = {r: {} for r in self.rungs}
        self._stopped: set[str] = set()
        self._finished: set[str] = set()
        self._decisions = 0

    @property
    def stopped_trials(self) -> set[str]:
        """Trials this object told to stop (a copy)."""
        return set(self._stopped)

    @property
    def finished_trials(self) -> set[str]:
        """Trials passed to :meth:`on_complete` that have not reported since (a copy)."""
        return set(self._finished)

    @property
    def decision_count(self) -> int:
        """How many rung decisions were made (one per recorded vector)."""
        return self._decisions

    def recorded(self, milestone: int) -> dict[str, list[float | None]]:
        """Copy of the raw vectors recorded at one rung, in recording order (None = NaN/inf)."""
        return {tid: list(v) for tid, v in self._recorded[milestone].items()}

    def on_result(self, trial_id: str, t: float, values: Mapping[str, float]) -> str:
        """Record a result and return ``"continue"`` or ``"stop"`` (rule in the class doc)."""
        missing = [k for k in self.objectives if k not in values]
        if missing:
            raise KeyError(f"result of trial {trial_id} lacks objective(s) {missing}")
        if trial_id in self._stopped:
            return STOP
        self._finished.discard(trial_id)
        if t >= self.max_t:
            return CONTINUE
        done = [r for r in self.rungs if trial_id in self._recorded[r]]
        new = [r for r in self.rungs if r <= t and (not done or r > done[-1])]
        if not new:
            return CONTINUE
        rung = new[-1]
        self._recorded[rung][trial_id] = [_finite_or_none(values[k]) for k in self.objectives]
        self._decisions += 1
        recorded = self._recorded[rung]
        n = len(recorded)
        if n < self.reduction_factor:
            return CONTINUE
        order = self._order(list(recorded.values()))
        position = order.index(list(recorded).index(trial_id))
        if position < math.ceil(n / self.reduction_factor):
            return CONTINUE
        self._stopped.add(trial_id)
        return STOP

    def on_complete(self, trial_id: str) -> None:
        """Mark a trial finished; its rung records stay as the yardstick for later trials."""
        self._finished.add(trial_id)

    def forget(self, trial_ids: Iterable[str]) -> None:
        """Drop trials from every rung and set: a trial lost with its machine and trained again from
        its first epoch under a new id would otherwise count twice at the rungs it had reached."""
        for trial_id in trial_ids:
            for rung in self._recorded.values():
                rung.pop(trial_id, None)
            self._stopped.discard(trial_id)
            self._finished.discard(trial_id)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (strict JSON: NaN/inf are stored as null)."""
        return {
            "version": _STATE_VERSION,
            "config": self._config(),
            "rungs": [
                {"milestone": r, "recorded": [[t, list(v)] for t, v in self._recorded[r].items()]}
                for r in self.rungs
            ],
            "stopped": sorted(self._stopped),
            "finished": sorted(self._finished),
            "decisions": self._decisions,
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Replace the state by ``d``; ValueError if it is malformed or from another setup."""
        try:
            if d["version"] != _STATE_VERSION:
                raise ValueError(f"unsupported MOASHA state version {d['version']!r}")
            if d["config"] != self._config():
                raise ValueError(
                    f"MOASHA state was made with {d['config']}, this instance is {self._config()}"
                )
            milestones = [entry["milestone"] for entry in d["rungs"]]
            if milestones != self.rungs:
                raise ValueError(f"state rungs {milestones} != {self.rungs}")
            recorded: dict[int, dict[str, list[float | None]]] = {}
            for entry in d["rungs"]:
                rung: dict[str, list[float | None]] = {}
                for tid, vec in entry["recorded"]:
                    if not isinstance(tid, str) or len(vec) != len(self.objectives):
                        raise ValueError(f"bad record {[tid, vec]!r} at rung {entry['milestone']}")
                    rung[tid] = [None if v is None else float(v) for v in vec]
                recorded[entry["milestone"]] = rung
            stopped = {str(t) for t in d["stopped"]}
            finished = {str(t) for t in d["finished"]}
            decisions = int(d["decisions"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed MOASHA state: missing or mistyped {err}") from err
        self._recorded, self._stopped, self._finished = recorded, stopped, finished
        self._decisions = decisions

    def _config(self) -> dict[str, Any]:
        # Lists keep the objective order and compare equal after a JSON round trip.
        return {
            "objectives": [[k, m] for k, m in self.objectives.items()],
            "max_t": self.max_t,
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "tie_break": self.tie_break,
            **({"epsilon": self.epsilon} if self.epsilon else {}),  # absent: states from before it
        }

    def _order(self, vectors: list[list[float | None]]) -> list[int]:
        """Indices of ``vectors`` (in recording order) from best to worst."""
        finite = [i for i, v in enumerate(vectors) if None not in v]
        worst = [i for i, v in enumerate(vectors) if None in v]
        if not finite:
            return worst
        F = np.array([vectors[i] for i in finite], dtype=float) * self._signs
        idx = np.arange(len(finite))
        # np.lexsort sorts by the last key first: objective 0, then 1, ..., then recording order.
        base = np.lexsort((idx,) + tuple(F[:, j] for j in reversed(range(F.shape[1]))))
        rank_in_base = np.empty_like(base)
        rank_in_base[base] = idx
        order: list[int] = []
        for front in nondominated_fronts(F, self._eps):
            front = front[np.argsort(rank_in_base[front], kind="stable")]  # base order
            G = _normalise(F[front])
            if self.tie_break == "crowding":
                inner = np.argsort(-_crowding(G), kind="stable")
            else:
                inner = _epsnet(G)
            order.extend(finite[k] for k in front[inner])
        return order + worst


def _milestones(max_t: float, grace_period: float, reduction_factor: float) -> list[int]:
    rungs: list[int] = []
    k = 0
    while True:
        # Tolerance: 3 * 3.0**2 can be 27.000000000000004 in floating point.
        r = math.ceil(grace_period * reduction_factor**k - 1e-9)
        if r >= max_t:
            return rungs
        if not rungs or r > rungs[-1]:
            rungs.append(r)
        k += 1


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _normalise(G: np.ndarray) -> np.ndarray:
    """Scale each column to [0, 1]; constant columns become 0 (they carry no spread)."""
    lo, hi = G.min(0), G.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (G - lo) / span


def _crowding(G: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of normalised points; objectives without spread are skipped."""
    k, m = G.shape
    d = np.zeros(k)
    for j in range(m):
        order = np.argsort(G[:, j], kind="stable")
        if G[order[-1], j] <= G[order[0], j]:
            continue
        d[order[0]] = d[order[-1]] = np.inf
        d[order[1:-1]] += G[order[2:], j] - G[order[:-2], j]
    return d


def _epsnet(G: np.ndarray) -> np.ndarray:
    """Greedy farthest-point order of normalised points, seeded with row 0 (ties: lower row)."""
    chosen = [0]
    dist = np.linalg.norm(G - G[0], axis=1)
    dist[0] = -1.0
    for _ in range(len(G) - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(G - G[nxt], axis=1))
        dist[chosen] = -1.0
    return np.array(chosen)


class MOASHAStateError(RuntimeError):
    """The scheduler state file exists but cannot be used (corrupt, partial or mismatched)."""


class MOASHAScheduler(FIFOScheduler):
    """Ray Tune scheduler running :class:`MOASHA` on ``objectives`` at ``time_attr``.

    Returns ``STOP`` for trials MO-ASHA stops and ``CONTINUE`` otherwise (never ``PAUSE``);
    trials are started in FIFO order. Objective keys are those of Tune's flattened result
    (``"a/b"`` for nested dicts). Results lacking ``time_attr`` or an objective are ignored.

    ``self.metric`` stays None on purpose: Tune checks ``scheduler.metric in result`` and a
    list there breaks it; ``metric``/``mode`` from ``TuneConfig`` are accepted and ignored.

    Tune does not persist scheduler state across ``Tuner.restore`` (the scheduler comes back
    from ``tuner.pkl`` as it was at the start), so with ``state_path`` the MOASHA state is
    written atomically to that JSON file after every rung decision and completion, and read
    back whenever the scheduler is constructed or unpickled. Use a path unique to the
    experiment (e.g. inside its directory): an existing file is always resumed from.
    """

    def __init__(
        self,
        objectives: Mapping[str, str],
        max_t: int,
        grace_period: int = 1,
        reduction_factor: float = 3,
        tie_break: str = "crowding",
        time_attr: str = "training_iteration",
        state_path: str | os.PathLike | None = None,
        protected_config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        epsilon: Mapping[str, float] | None = None,
    ):
        super().__init__()
        # Reference trials (the dense baseline every speedup is measured against; the papers'
        # settings the pick is compared with) always run to max_t and are not ranked: stopping one
        # would leave its comparison extrapolated. One mapping or a list of them.
        if protected_config is None:
            self._protected: list[dict[str, Any]] = []
        elif isinstance(protected_config, Mapping):
            self._protected = [dict(protected_config)]
        else:
            self._protected = [dict(c) for c in protected_config]
        self._moasha = MOASHA(objectives, max_t, grace_period, reduction_factor, tie_break, epsilon)
        self._time_attr = time_attr
        self._state_path = os.fspath(state_path) if state_path is not None else None
        self._warned_missing = False
        if self._state_path is not None and os.path.exists(self._state_path):
            self.restore(self._state_path)

    @property
    def moasha(self) -> MOASHA:
        """The decision core (read it, e.g. ``scheduler.moasha.recorded(3)``)."""
        return self._moasha

    @property
    def stopped_trials(self) -> set[str]:
        return self._moasha.stopped_trials

    @property
    def decision_count(self) -> int:
        return self._moasha.decision_count

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        return True

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self._protected and dict(trial.config) in self._protected:
            return TrialScheduler.CONTINUE
        values = self._values(trial.trial_id, result)
        if values is None:
            return TrialScheduler.CONTINUE
        before = self._moasha.decision_count
        decision = self._moasha.on_result(trial.trial_id, result[self._time_attr], values)
        if self._moasha.decision_count != before:
            self._persist()
        return TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        # A Tune stopper can end a trial before the scheduler saw that result: record it.
        values = self._values(trial.trial_id, result or {})
        if values is not None:
            self._moasha.on_result(trial.trial_id, result[self._time_attr], values)
        self._moasha.on_complete(trial.trial_id)
        self._persist()

    def on_trial_error(self, tune_controller, trial) -> None:
        self._moasha.on_complete(trial.trial_id)
        self._persist()

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._moasha.on_complete(trial.trial_id)
        self._persist()

    def forget(self, trial_ids: Iterable[str]) -> None:
        """`MOASHA.forget`, persisted (a resume from the records alone re-trains lost trials)."""
        self._moasha.forget(trial_ids)
        self._persist()

    def debug_string(self) -> str:
        sizes = {r: len(self._moasha.recorded(r)) for r in self._moasha.rungs}
        return (
            f"Using MO-ASHA on {list(self._moasha.objectives)}: recorded per rung {sizes}, "
            f"{len(self._moasha.stopped_trials)} stopped, {self.decision_count} decisions"
        )

    def save(self, checkpoint_path: str) -> None:
        """Write the state JSON atomically (`core/atomic.py`: temp file, fsync, rename)."""
        payload = {
            "format": _FILE_FORMAT,
            "time_attr": self._time_attr,
            "moasha": self._moasha.state_dict(),
        }
        os.makedirs(os.path.dirname(os.path.abspath(checkpoint_path)), exist_ok=True)
        atomic_write_text(checkpoint_path, json.dumps(payload, allow_nan=False))

    def restore(self, checkpoint_path: str) -> None:
        """Load a state file written by :meth:`save`; raises MOASHAStateError if unusable."""
        try:
            with open(checkpoint_path) as f:
                payload = json.load(f)
            if not isinstance(payload, dict) or payload.get("format") != _FILE_FORMAT:
                raise ValueError(f"not a {_FILE_FORMAT} state file")
            if payload.get("time_attr") != self._time_attr:
                raise ValueError(
                    f"state uses time_attr {payload.get('time_attr')!r}, "
                    f"scheduler uses {self._time_attr!r}"
                )
            self._moasha.load_state_dict(payload["moasha"])
        except (OSError, ValueError, KeyError) as err:
            raise MOASHAStateError(
                f"cannot use MO-ASHA state file {checkpoint_path}: {err}. It is corrupt, partial "
                f"or from a different scheduler setup; refusing to start fresh silently. Restore "
                f"it or delete it to start the rung bookkeeping from scratch."
            ) from err

    def __getstate__(self) -> dict[str, Any]:
        # Small and free of live objects; with a state file the file is the truth.
        m = self._moasha
        return {
            "init": {
                "objectives": dict(m.objectives),
                "max_t": m.max_t,
                "grace_period": m.grace_period,
                "reduction_factor": m.reduction_factor,
                "tie_break": m.tie_break,
                "time_attr": self._time_attr,
                "state_path": self._state_path,
                "protected_config": self._protected,
                "epsilon": dict(m.epsilon),
            },
            "state": None if self._state_path else m.state_dict(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["init"])
        if state["state"] is not None:
            self._moasha.load_state_dict(state["state"])

    def _values(self, trial_id: str, result: Mapping[str, Any]) -> dict[str, Any] | None:
        keys = [self._time_attr, *self._moasha.objectives]
        missing = [k for k in keys if k not in result]
        if not missing:
            return {k: result[k] for k in self._moasha.objectives}
        if result and not self._warned_missing:
            self._warned_missing = True
            logger.warning(
                "MO-ASHA ignores results of trial %s without %s (warned once)", trial_id, missing
            )
        return None

    def _persist(self) -> None:
        if self._state_path is not None:
            self.save(self._state_path)
