"""Live progress of a running search, fed typed trial records (`TrialRecord`) by the search driver.

On a terminal it is a rich `Live` view redrawn by rich's own refresh thread, so `update()` only
stores the record under a lock (cheap: it runs on Ray's driver thread). Anywhere else (a pipe, a
CI log, a file) it prints one plain ASCII line per FINISHED trial, with no control characters,
so logs stay greppable.

The object holds only plain values until `start()`, and pickling drops the runtime parts
(console, Live, lock, stream), so it can be built and shipped before the search starts.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, TextIO

from trilevel.store.run_store import COMPLETED, FAILED, FINISHED, RUNNING, STOPPED_EARLY, TrialRecord

from . import fmt
from .selection import holds, pareto_front


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _clean(text: Any, limit: int = 120) -> str:
    """One printable ASCII line: no ANSI escapes, no carriage returns, no newlines."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    text = " ".join(text.encode("ascii", "backslashreplace").decode("ascii").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LiveProgress:
    """Progress of a search: trials finished / running / budget, epochs, elapsed and ETA, the
    current Pareto-front size and the best speedup within `max_acc_drop` points of dense.

    Args:
        budget: number of trials the search will run (for "n/budget" and the ETA).
        max_acc_drop: accuracy budget in points (0.5 = half a percentage point).
        console: a rich Console to draw on; default: one created in `start()` on `stream`.
        stream: where to write; default `sys.stdout` looked up in `start()`.
        objective: "time" (measured `speedup`) or "flops" (`flops_speedup`).
        baseline_accs: dense accuracies over seeds (fractions); their mean is the reference.
            Without them the reference is the `is_baseline` trial's val_acc once it completes.
        rows: how many of the most recently updated trials the live table shows.
        note: one line shown above the trials (e.g. how `--epochs auto` chose the proxy's length).
    """

    def __init__(
        self,
        budget: int,
        max_acc_drop: float,
        console: Any = None,
        stream: TextIO | None = None,
        *,
        objective: str = "time",
        baseline_accs: list[float] | None = None,
        rows: int = 8,
        refresh_per_second: float = 2.0,
        note: str | None = None,
    ) -> None:
        self.note = note
        self.budget = int(budget)
        self.max_acc_drop = float(max_acc_drop)
        self.objective = objective
        self.baseline_accs = [float(a) for a in (baseline_accs or [])]
        self.rows = int(rows)
        self.refresh_per_second = refresh_per_second
        self._console_arg = console
        self._stream_arg = stream
        self._init_runtime()
        self._records: "OrderedDict[str, TrialRecord]" = OrderedDict()  # most recently updated last
        self._finished: set[str] = set()
        self._started_at: float | None = None
        self._stopped = False
        self._front_dirty = True
        self._front_size = 0
        self._best_speed: float | None = None
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()  # guards the records; held only briefly
        self._render_lock = threading.Lock()  # serialises renders (refresh thread vs stop())
        self._live = None
        self._console = None
        self._out: TextIO | None = None
        self._plain = True

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_lock", "_render_lock", "_live", "_console", "_out", "_console_arg", "_stream_arg"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._console_arg = None  # the caller's console/stream stay behind: sys.stdout after this
        self._stream_arg = None
        self._started_at = None  # monotonic clocks do not cross processes; start() afresh
        self._stopped = False
        self._init_runtime()

    def start(self) -> "LiveProgress":
        """Open the live view (terminal) or plain-line mode (anything else). Idempotent."""
        if self._started_at is not None:
            return self
        self._started_at = time.monotonic()
        self._stopped = False
        console = self._console_arg
        if console is not None:
            self._out = console.file
            terminal = console.is_terminal and not console.is_dumb_terminal
        else:
            self._out = self._stream_arg if self._stream_arg is not None else sys.stdout
            try:
                terminal = bool(self._out.isatty())
            except (AttributeError, ValueError):
                terminal = False
        self._plain = not terminal
        if self._plain and self.note:
            self._out.write(_clean(self.note, limit=400) + "\n")
            self._out.flush()
        if terminal:
            from rich.console import Console
            from rich.live import Live

            self._console = console or Console(file=self._out, highlight=False)
            self._live = Live(get_renderable=self._render, console=self._console,
                              refresh_per_second=self.refresh_per_second, transient=False)
            self._live.start()
        return self

    def stop(self) -> None:
        """Draw the final state and release the terminal. Idempotent."""
        self._stopped = True
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()

    def __enter__(self) -> "LiveProgress":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- feeding -------------------------------------------------------------------------

    def update(self, record: TrialRecord | dict) -> None:
        """Record a trial's latest state (per epoch report and at trial end); a stored dict is
        validated into a `TrialRecord` first. Never raises: a bad record must not take the search
        down with it."""
        try:
            self._update(record if isinstance(record, TrialRecord) else TrialRecord.from_dict(record))
        except Exception as exc:  # noqa: BLE001 - progress display is best effort
            self.last_error = f"{type(exc).__name__}: {exc}"  # kept for debugging, never raised

    def _update(self, record: TrialRecord) -> None:
        if self._started_at is None and not self._stopped:
            self.start()
        trial_id = record.trial_id
        status = record.status
        line = None
        with self._lock:
            self._records[trial_id] = record
            self._records.move_to_end(trial_id)
            if status in FINISHED:
                self._front_dirty = True
                if trial_id not in self._finished:
                    self._finished.add(trial_id)
                    if self._plain and not self._stopped:
                        line = self._plain_line(record)
        if line is not None and self._out is not None:
            self._out.write(line + "\n")
            self._out.flush()

    # -- state ----------------------------------------------------------------------------

    def _reference(self) -> float | None:
        if self.baseline_accs:
            return statistics.fmean(self.baseline_accs)
        for rec in self._records.values():
            if rec.is_baseline and rec.status == COMPLETED:
                return _num(rec.val_acc)
        return None

    def _speed(self, rec: TrialRecord) -> float | None:
        return _num(rec.speed(self.objective))

    def _front_snapshot(self) -> tuple[list[TrialRecord], float | None] | None:
        """Under the lock: the completed records to recompute from, or None when nothing finished
        since the last computation (so refreshes between trial ends cost nothing)."""
        if not self._front_dirty:
            return None
        self._front_dirty = False
        return [r for r in self._records.values() if r.status == COMPLETED], self._reference()

    def _compute_front(self, snapshot: tuple[list[TrialRecord], float | None] | None) -> None:
        """Front size and best speedup within budget (may run outside the lock)."""
        if snapshot is None:
            return
        recs, ref = snapshot
        front_size = len(pareto_front(recs, self.objective))
        best = None
        if ref is not None:
            threshold = ref - self.max_acc_drop / 100.0
            ok = [self._speed(r) for r in recs
                  if not r.is_baseline and self._speed(r) is not None
                  and self._speed(r) > 1.0 and holds(r.val_acc, threshold)]
            best = max(ok) if ok else None
        self._front_size, self._best_speed = front_size, best

    def _counts(self) -> dict[str, Any]:
        statuses = [r.status for r in self._records.values()]
        finished = sum(s in FINISHED for s in statuses)
        elapsed = time.monotonic() - self._started_at if self._started_at is not None else 0.0
        remaining = max(self.budget - finished, 0)
        # Rough: the mean wall time per finished trial so far, times what is left.
        eta = elapsed / finished * remaining if finished else None
        epochs = sum(r.epochs for r in self._records.values())
        return {"finished": finished, "running": statuses.count(RUNNING),
                "failed": statuses.count(FAILED), "epochs": epochs, "elapsed": elapsed, "eta": eta}

    def _best_text(self, times: str) -> str:
        if self._best_speed is None:
            return f"none yet within {self.max_acc_drop:g} pts"
        return f"{self._best_speed:.2f}{times} within {self.max_acc_drop:g} pts"

    def _plain_line(self, rec: TrialRecord) -> str:
        # Plain mode has no refresh thread, so computing under the lock blocks nobody.
        self._compute_front(self._front_snapshot())
        c = self._counts()
        status = rec.status
        head = f"[{c['finished']}/{self.budget}] trial {_clean(rec.trial_id, 40)} {status}"
        if rec.is_baseline:
            head += " (dense baseline)"
        if status == FAILED:
            error = (str(rec.error or "no error recorded").strip().splitlines() or ["?"])[-1]
            body = f"error: {_clean(error)}"
        else:
            acc = _num(rec.val_acc)
            ref = self._reference()
            delta = None if acc is None or ref is None else acc - ref
            body = (f"acc {fmt.pct(acc)}% ({fmt.points(delta)} pts) speedup {fmt.speed(self._speed(rec))}"
                    f" epochs {rec.epochs}")
        tail = (f"running {c['running']}, front {self._front_size}, best {self._best_text('x')}"
                f" | elapsed {fmt.duration(c['elapsed'])} eta {fmt.duration(c['eta'])}")
        return _clean(f"{head}: {body} | {tail}", limit=400)

    def _render(self):
        """Build the live view (called by rich's refresh thread, a few times per second)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._render_lock:
            with self._lock:  # only copy state here; the driver thread must not wait on rendering
                snapshot = self._front_snapshot()
                c = self._counts()
                latest = list(self._records.values())[-self.rows:][::-1]
                ref = self._reference()
            self._compute_front(snapshot)
            best = self._best_text("×")
        header = Text()
        if self.note:
            header.append(self.note + "\n", style="dim")
        header.append(f"trials {c['finished']}/{self.budget} finished", style="bold")
        header.append(f" · {c['running']} running · {c['failed']} failed · {c['epochs']} epochs"
                      f" · elapsed {fmt.duration(c['elapsed'])} · ETA {fmt.duration(c['eta'])}")
        header.append(f"\nPareto front {self._front_size} · best {best}")
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        for title, justify in (("trial", "left"), ("status", "left"), ("ex", "right"), ("tok", "right"),
                               ("att", "right"), ("epochs", "right"), ("acc %", "right"),
                               ("Δ pts", "right"), ("speedup", "right")):
            table.add_column(title, justify=justify, no_wrap=True)
        styles = {COMPLETED: "green", STOPPED_EARLY: "yellow", FAILED: "red", RUNNING: "cyan"}
        for rec in latest:
            cfg = rec.config
            acc = _num(rec.val_acc)
            delta = None if acc is None or ref is None else acc - ref
            table.add_row(
                Text(_clean(rec.trial_id, 40)), Text(rec.status, style=styles.get(rec.status, "")),
                *(fmt.keep(v) for v in (cfg.example_keep, cfg.token_keep, cfg.attention_keep)),
                str(rec.epochs), fmt.pct(acc), fmt.points(delta), fmt.speed(self._speed(rec), "×"),
            )
        return Group(header, table)
