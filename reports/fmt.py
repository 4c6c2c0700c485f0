"""Small text formatters shared by the report and the live view, so both print numbers alike."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """'1h02m03s' / '4m05s' / '12s'; '?' when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def pct(acc: float | None) -> str:
    """A 0..1 accuracy as percent with two decimals."""
    return "-" if acc is None else f"{acc * 100:.2f}"


def points(delta: float | None) -> str:
    """An accuracy difference (fraction) as signed percentage points."""
    if delta is None:
        return "-"
    value = round(delta * 100, 2) + 0.0  # + 0.0 turns -0.0 into 0.0: no "-0.00" for float fuzz
    return f"{value:+.2f}"


def speed(value: float | None, times: str = "x") -> str:
    return "-" if value is None else f"{value:.2f}{times}"


def keep(value: float) -> str:
    return f"{value:.3g}"
