"""The accuracy-vs-speedup picture: `pareto.png` (matplotlib) and `pareto.html` (plotly, optional).

Uses `matplotlib.figure.Figure` with the Agg canvas directly, never pyplot: no global backend
switch, no display needed, and safe to call from any thread (the search may call it at the end).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trilevel.core.atomic import atomic_path
from trilevel.store.run_store import COMPLETED, STOPPED_EARLY

from .selection import PickKind

if TYPE_CHECKING:  # pragma: no cover
    from .summary import Summary


def _axis_label(objective: str) -> str:
    what = "FLOPs" if objective == "flops" else "measured training time"
    return f"speedup over dense (x, {what})"


def plot_png(summary: "Summary", path: str | Path) -> Path:
    """Write `figure(summary)` as a PNG (atomically)."""
    fig = figure(summary)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def figure(summary: "Summary"):
    """Draw all trials faded, early-stopped ones as crosses, the front as a step line (one search run
    each), the dense seed spread as a horizontal band, and what the verdicts rest on: dense, the
    finalists and the pick at their mean over seeds (finalists with their min..max), beside the
    train-shorter curve (also means over the same seeds)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run, objective = summary.run, summary.objective
    fig = Figure(figsize=(8, 5.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)

    def points(status: str):
        pts = [(t.speed(objective), t.val_acc * 100) for t in run.trials
               if t.status == status and t.val_acc is not None and t.speed(objective) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    ref = summary.reference
    if ref.low is not None and ref.high is not None and len(ref.seeds) >= 2:
        ax.axhspan(ref.low * 100, ref.high * 100, color="tab:green", alpha=0.15,
                   label=f"dense over {len(ref.seeds)} seeds (min..max)")
    if summary.selection.threshold is not None:
        ax.axhline(summary.selection.threshold * 100, color="tab:green", ls="--", lw=1,
                   label=f"dense - {summary.max_acc_drop:g} points")

    xs, ys = points(COMPLETED)
    ax.scatter(xs, ys, s=22, color="tab:blue", alpha=0.3, label="completed trials")
    xs, ys = points(STOPPED_EARLY)
    if xs:
        ax.scatter(xs, ys, s=26, marker="x", color="tab:gray", alpha=0.5,
                   label="stopped early (fewer epochs)")

    front = sorted(summary.front, key=lambda t: t.speed(objective))
    if front:
        fx = [t.speed(objective) for t in front]
        fy = [t.val_acc * 100 for t in front]
        # y[i] holds on (x[i-1], x[i]]: the best accuracy reachable at at least that speedup.
        ax.step(fx, fy, where="pre", color="tab:orange", lw=1.5)
        ax.scatter(fx, fy, s=40, color="tab:orange", zorder=3, label="Pareto front")

    if summary.shorter is not None:  # the alternative to beat: dense trained for fewer epochs
        sx, sy = zip(*summary.shorter.points)
        ax.plot(sx, [a * 100 for a in sy], color="tab:red", ls=":", lw=1.5, marker="s", ms=5,
                label="dense trained shorter (mean of seeds)")

    finalists = [t for t in front if t.seed_accs and not t.is_baseline]
    if finalists:  # what the pick rule compares: each finalist's mean over the dense seeds
        fx = [t.speed(objective) for t in finalists]
        fy = [t.mean_acc * 100 for t in finalists]
        err = [[y - min(t.accs) * 100 for t, y in zip(finalists, fy)],
               [max(t.accs) * 100 - y for t, y in zip(finalists, fy)]]
        ax.errorbar(fx, fy, yerr=err, fmt="o", mfc="none", color="tab:purple", capsize=3, zorder=4,
                    label=f"finalists: mean (min..max) of {len(finalists[0].accs)} seeds")

    base = run.baseline
    if base is not None and ref.acc is not None and base.speed(objective) is not None:
        seeds = f" (mean of {len(ref.seeds)} seeds)" if len(ref.seeds) >= 2 else ""
        ax.scatter([base.speed(objective)], [ref.acc * 100], s=90, marker="D", color="black",
                   zorder=4, label=f"dense{seeds}")
    best = summary.selection.trial
    if best is not None:
        label = {PickKind.WITHIN: "best (within budget)", PickKind.CLOSEST: "closest finalist (none within budget)"}.get(
            summary.selection.kind, "knee (none within budget)")
        if summary.instead is not None:
            label = "pick, below dense trained shorter"
        ax.scatter([best.speed(objective)], [best.mean_acc * 100], s=260, marker="*", color="gold",
                   edgecolors="black", linewidths=0.8, zorder=5, label=label)

    ax.set_xlabel(_axis_label(objective))
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{run.search.model} on {run.search.dataset}: accuracy vs speedup ({run.search.name})")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def plotly_available() -> bool:
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        return False
    return True


def plot_html(summary: "Summary", path: str | Path) -> Path | None:
    """Interactive version with hover details; returns None (writes nothing) without plotly.

    The plotly.js bundle is embedded so the file opens on machines without internet access.
    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        return None

    run, objective = summary.run, summary.objective

    def trace(trials, name, **kw):
        trials = [t for t in trials if t.val_acc is not None and t.speed(objective) is not None]
        return go.Scatter(
            x=[t.speed(objective) for t in trials], y=[t.val_acc * 100 for t in trials], name=name,
            text=[f"{t.trial_id}<br>example {t.config.example_keep:g} / token {t.config.token_keep:g}"
                  f" / attention {t.config.attention_keep:g}<br>epochs {t.epochs}" for t in trials],
            hovertemplate="%{text}<br>acc %{y:.2f}%<br>speedup %{x:.2f}x<extra></extra>", **kw,
        )

    fig = go.Figure()
    fig.add_trace(trace([t for t in run.trials if t.status == COMPLETED], "completed",
                        mode="markers", opacity=0.35))
    fig.add_trace(trace([t for t in run.trials if t.status == STOPPED_EARLY], "stopped early",
                        mode="markers", marker_symbol="x", opacity=0.5))
    front = sorted(summary.front, key=lambda t: t.speed(objective))
    fig.add_trace(trace(front, "Pareto front", mode="lines+markers", line_shape="vh"))
    if summary.shorter is not None:
        sx, sy = zip(*summary.shorter.points)
        fig.add_trace(go.Scatter(x=list(sx), y=[a * 100 for a in sy], name="dense trained shorter (mean of seeds)",
                                 mode="lines+markers", line_dash="dot", marker_symbol="square",
                                 hovertemplate="dense shorter<br>acc %{y:.2f}%<br>speedup %{x:.2f}x<extra></extra>"))
    pick = summary.selection.trial
    if pick is not None:  # at its mean over seeds, as the pick rule and the train-shorter verdict see it
        fig.add_trace(go.Scatter(
            x=[pick.speed(objective)], y=[pick.mean_acc * 100], name=summary.selection.kind, mode="markers",
            marker_symbol="star", marker_size=16, text=[f"{pick.trial_id}, mean of {len(pick.accs)} seed(s)"],
            hovertemplate="%{text}<br>acc %{y:.2f}%<br>speedup %{x:.2f}x<extra></extra>"))
    ref = summary.reference
    if ref.low is not None and len(ref.seeds) >= 2:
        fig.add_hrect(y0=ref.low * 100, y1=ref.high * 100, opacity=0.15, line_width=0,
                      fillcolor="green")
    fig.update_layout(
        title=f"{run.search.model} on {run.search.dataset}: accuracy vs speedup ({run.search.name})",
        xaxis_title=_axis_label(objective), yaxis_title="validation accuracy (%)",
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.write_html(str(tmp), include_plotlyjs=True)
    return path
