"""The terminal report: the Pareto-optimal configurations, the pick, and how to train it fully.

Rendered with rich; on a non-terminal (a pipe, a CI log) rich drops styles by itself, so the same
code gives clean text. The dense seed spread is printed next to the table so a drop inside it
reads as noise, not as a real loss.
"""

from __future__ import annotations

import statistics

from rich.console import Console
from rich.table import Table
from rich.text import Text

from trilevel.store.run_store import COMPLETED, FAILED, RUNNING, SEARCH_FINISHED, STOPPED_EARLY, SearchStatus

from . import fmt
from .economics import PAYS_SHARE
from .levels import LevelEffects
from .noise import Validity, seeds_to_resolve
from .proxy import climbing_line, describe_epochs_auto, length_holds_line
from .selection import PICK_RULE, PickKind, holds
from .summary import Summary

EXTRA_COLUMNS = (  # shown only when the search space varies them
    ("schedule", "schedule"),
    ("example_criterion", "ex. criterion"),
    ("token_mode", "token mode"),
)


def _symbols(console: Console) -> dict[str, str]:
    """Unicode where the output can take it, ASCII otherwise (e.g. LANG=C log files)."""
    if (console.encoding or "").lower().replace("-", "").startswith("utf"):
        return {"x": "×", "delta": "Δ", "pm": "±", "dot": "·", "star": "★"}
    return {"x": "x", "delta": "d", "pm": "+/-", "dot": "|", "star": "*"}


def _console(console: Console | None) -> Console:
    if console is not None:
        return console
    console = Console(highlight=False)
    if not console.is_terminal:  # a log file: wide enough that the table never wraps ids
        console = Console(highlight=False, width=max(console.width, 160))
    return console


def render_report(summary: Summary, console: Console | None = None) -> None:
    """Print the report for `summary` (see `summarize` / `write_outputs`) to `console`."""
    console = _console(console)
    sym = _symbols(console)
    run, search, objective = summary.run, summary.run.search, summary.objective
    ref, sel = summary.reference, summary.selection

    head = Text()
    head.append(f"Search {search.name}", style="bold")
    head.append(f": {search.model} on {search.dataset} {sym['dot']} objective {objective}"
                f" {sym['dot']} status {search.status} {sym['dot']} {run.path}")
    console.print(head)
    climb = summary.climb
    if climb is not None and climb.still_learning:  # first: it qualifies every ranking below
        console.print(Text(f"warning: {climbing_line(climb)}", style="bold yellow"))
    elif climb is not None and (settled := length_holds_line(climb)) is not None:
        console.print(Text(settled, style="dim"))
    if search.epochs_auto is not None:
        console.print(Text(describe_epochs_auto(search.epochs_auto), style="dim"))
    for warning in run.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))

    if sel.kind == PickKind.NOT_LEARNED:
        validity = Validity.from_dict(search.validity)
        console.print(Text(validity.explanation(search.epochs, search.num_train, search.num_val),
                           style="bold red"))
        console.print(Text(f"Nothing ranked or exported. {run.path}", style="dim"), soft_wrap=True)
        return
    if summary.within_noise and ref.seeds:
        need = seeds_to_resolve(summary.max_acc_drop, ref.seeds, search.num_val)
        console.print(Text(
            f"Note: --max-acc-drop {summary.max_acc_drop:g} is finer than {len(ref.seeds)} seeds resolve "
            f"({summary.resolution_pts:.1f} points at 90%): a pick 'within' it is within noise."
            + (f" Resolving {summary.max_acc_drop:g} points would take about {need} seeds per configuration at "
               "this spread (--baseline-seeds), or a larger validation set." if need else ""), style="yellow"))

    extras = [(name, title) for name, title in EXTRA_COLUMNS if name in search.varied]
    table = Table(title="Pareto-optimal configurations, fastest first", title_justify="left",
                  header_style="bold")
    table.add_column("", no_wrap=True)
    for title in ("example keep", "token keep", "attention keep"):
        table.add_column(title, justify="right")
    for _, title in extras:
        table.add_column(title)
    table.add_column("val acc (%)", justify="right")
    table.add_column(f"{sym['delta']} dense (pts)", justify="right")
    table.add_column(f"speedup ({sym['x']})", justify="right")
    table.add_column(f"FLOPs speedup ({sym['x']})", justify="right")
    table.add_column("epochs", justify="right")
    if summary.shorter is not None:
        table.add_column("vs dense shorter", justify="center")
    table.add_column("trial", no_wrap=True, overflow="fold")
    if any(t.seed_accs for t in summary.front):
        table.caption = ("val acc: each trial's search run; the pick and 'vs dense shorter' use the finalists' "
                         "means over seeds (table below)")

    def row(trial, mark: str, mark_style: str = "") -> list:
        delta = None if ref.acc is None or trial.val_acc is None else trial.val_acc - ref.acc
        ok = holds(trial.val_acc, sel.threshold)
        cells = [Text(mark, style=mark_style)]
        cells += [fmt.keep(trial.config.example_keep), fmt.keep(trial.config.token_keep),
                  fmt.keep(trial.config.attention_keep)]
        cells += [str(getattr(trial.config, name)) for name, _ in extras]
        cells += [fmt.pct(trial.val_acc),
                  Text(fmt.points(delta), style="" if delta is None else ("green" if ok else "red")),
                  fmt.speed(trial.speedup, ""), fmt.speed(trial.flops_speedup, ""), str(trial.epochs)]
        if summary.shorter is not None:
            verdict = summary.beats_shorter.get(trial.trial_id)
            cells.append(Text({True: "above", False: "below", None: "-"}[verdict] if not trial.is_baseline else "",
                              style={True: "green", False: "red", None: "dim"}[verdict]))
        cells.append(Text(trial.trial_id))
        return cells

    pick = sel.trial
    for trial in summary.front:
        if trial.is_baseline:
            continue
        mark, style = (f"paper: {trial.paper}", "cyan") if trial.paper else ("", "")
        if trial is pick:
            mark, style = (f"{sym['star']} best", "bold green") if sel.kind == PickKind.WITHIN else (f"{sym['star']} {sel.kind}", "bold yellow")
        table.add_row(*row(trial, mark, style))
    table.add_section()
    base = run.baseline
    if base is not None:
        mark = "dense" + (f" {sym['star']} knee" if base is pick else "")
        table.add_row(*row(base, mark, "bold"), style="" if any(t is base for t in summary.front) else "dim")
    elif ref.acc is not None:
        cells = [Text("dense", style="bold"), "1", "1", "1"] + ["" for _ in extras]
        cells += [fmt.pct(ref.acc), "+0.00", "1.00", "1.00", "-"] + ([""] if summary.shorter is not None else [])
        cells += [Text(f"mean of {len(ref.seeds)} seeds")]
        table.add_row(*cells)
    if summary.front:
        console.print(table)
    else:
        console.print(Text("No completed trial yet: no Pareto front.", style="yellow"))

    # The dense spread over seeds: drops inside it are indistinguishable from noise.
    if len(ref.seeds) >= 2:
        console.print(Text(
            f"Dense accuracy over {len(ref.seeds)} seeds: {ref.acc * 100:.2f} {sym['pm']} {ref.std * 100:.2f} %"
            f" (min {ref.low * 100:.2f} .. max {ref.high * 100:.2f}); differences inside this band are seed noise."
        ))
        if summary.resolution_pts is not None:
            console.print(Text(
                f"Resolution: with {len(ref.seeds)} paired seeds, accuracy differences under "
                f"{summary.resolution_pts:.1f} points cannot be told from noise (90%, t interval; validation "
                f"set of {search.num_val or '?'} images)."))
    elif len(ref.seeds) == 1:
        console.print(Text(f"Dense accuracy from 1 seed: {ref.acc * 100:.2f} % (no spread measured; "
                           "small differences may be noise)."))
    elif ref.acc is not None:
        console.print(Text(f"Dense accuracy from the baseline trial: {ref.acc * 100:.2f} % "
                           "(single run; no seed spread measured)."))

    finalists = [t for t in summary.front if t.seed_accs and not t.is_baseline]
    if finalists:
        console.print(_finalists_table(finalists, summary, sym))

    if summary.shorter is not None:
        console.print(_shorter_table(summary, sym))
    shorter_line = _pick_vs_shorter(summary, sym)
    if shorter_line is not None:
        console.print(shorter_line)
    if summary.fidelity is not None:
        _print_fidelity(console, summary, sym)
    if summary.papers:
        console.print(_papers_table(summary, sym))
    if summary.levels is not None:
        for line in _levels_lines(summary.levels, sym):
            console.print(line)
    console.print(Text(f"Pick rule: {PICK_RULE}", style="dim"))
    if pick is None and sel.kind == PickKind.NONE and summary.front:
        console.print(Text(f"No pick: {sel.note}.", style="bold yellow"))
    if summary.instead is not None:
        r = summary.instead
        console.print(Text(
            f"Train dense shorter instead: the pick ({pick.speed(objective):.2f}{sym['x']} at {pick.mean_acc * 100:.2f} %) "
            f"is below dense trained for {r.epochs} of {search.epochs} epochs "
            f"({r.mean_acc * 100:.2f} % over {len(r.accs)} seeds). best.yaml is dense at that length; the full "
            f"training below keeps the same fraction ({summary.full_epochs} epochs).", style="bold yellow"))
    elif pick is not None:
        speed = pick.speed(objective)
        budget = (f"within {summary.max_acc_drop:g} points of dense (val acc >= {sel.threshold * 100:.2f} %)"
                  if sel.threshold is not None else "")
        seeds = f" (mean of {len(pick.accs)} seeds)" if pick.seed_accs else ""
        if sel.kind == PickKind.WITHIN:
            label = "Best (within noise)" if summary.within_noise else "Best"
            console.print(Text(f"{label}: trial {pick.trial_id}, {speed:.2f}{sym['x']} faster at "
                               f"{pick.mean_acc * 100:.2f} %{seeds}, {budget}.",
                               style="bold yellow" if summary.within_noise else "bold green"))
        elif sel.kind == PickKind.CLOSEST:
            console.print(Text(f"No finalist within {summary.max_acc_drop:g} points of dense accuracy over "
                               f"{len(pick.accs)} seeds; closest marked: trial {pick.trial_id}, {speed:.2f}{sym['x']} "
                               f"at {pick.mean_acc * 100:.2f} %{seeds}. Consider dense, or search on more data.",
                               style="bold yellow"))
        else:
            console.print(Text(f"None within {summary.max_acc_drop:g} points of dense accuracy; knee marked: "
                               f"trial {pick.trial_id}, {speed:.2f}{sym['x']} at {pick.val_acc * 100:.2f} %."
                               if sel.threshold is not None else
                               f"{sel.note}: trial {pick.trial_id}, {speed:.2f}{sym['x']} at {pick.val_acc * 100:.2f} %.",
                               style="bold yellow"))

    failed = [t for t in run.trials if t.status == FAILED]
    if failed:
        console.print(Text(f"Failed trials ({len(failed)}):", style="red"))
        for t in failed:
            # A traceback ends with the cause: show its last line.
            line = ((t.error or "").strip().splitlines() or ["no error recorded"])[-1]
            console.print(Text(f"  {t.trial_id}: {_clip(line)}"))

    retried = [t for t in run.trials if t.retries]
    if retried:  # Ray retried them from their last checkpoint (FailureConfig), e.g. after a lost node
        console.print(Text(f"Retried trials ({len(retried)}):", style="yellow"))
        for t in retried:
            why = (t.retry_errors or [""])[-1].strip().splitlines() or ["no reason recorded"]
            resumed = t.resumed_from
            where = f", continued from epoch {resumed}" if resumed else ""
            console.print(Text(f"  {t.trial_id}: {t.retries}x{where}, {t.status}; after: {_clip(why[-1])}"))

    counts = [f"{run.count(COMPLETED)} completed", f"{run.count(STOPPED_EARLY)} stopped early",
              f"{run.count('failed')} failed"]
    if run.count(RUNNING):
        counts.append(f"{run.count('running')} running")
    budget_txt = f" of budget {search.budget}" if search.budget else ""
    wall = fmt.duration(summary.wall_seconds)
    if search.status != SEARCH_FINISHED:
        wall += f" ({search.status})"
    console.print(Text(
        f"{len(run.trials)} trials{budget_txt}: {', '.join(counts)} {sym['dot']} front {len(summary.front)}"
        f" {sym['dot']} hypervolume {summary.hypervolume:.4f} (acc x speedup, ref 0,0)"
        f" {sym['dot']} search wall time {wall}"
    ))
    if summary.economics is not None:
        console.print(_economics_line(summary, sym))
    if summary.final_command:
        console.print(Text("Final full training:", style="bold"))
        console.print(Text(f"  {summary.final_command}"), soft_wrap=True)
    if summary.written:
        console.print(Text("Wrote " + ", ".join(str(p) for p in summary.written.values()), style="dim"),
                      soft_wrap=True)
    for note in summary.notes:
        console.print(Text(note, style="dim"))


def _levels_lines(fit: LevelEffects, sym: dict) -> list[Text]:
    """Where more speed would come from: each level's cost per doubling of speed, cheapest first,
    and which were tried down to the space's lower bound (reports/levels.py)."""
    lines = [Text(f"Where the speed comes from (least squares over the {fit.runs} trials run to the end, one seed "
                  f"each; accuracy residual sd {fit.acc_residual_sd:.2f} points; speed = {fit.speed}):")]
    for e in fit.levels:
        name = e.level.replace("_", " ")
        per_unit = f"{e.acc_pts_per_unit:+.2f} {sym['pm']} {e.acc_se:.2f} points per unit pruned"
        if not e.buys_speed:
            text = (f"  {name}: no measurable speed ({e.speedup_alone_at_lowest:.2f}{sym['x']} alone at keep "
                    f"{e.lowest_keep_tried:.2f}; {per_unit})")
        else:
            text = (f"  {name}: {e.pts_per_speed_doubling:+.1f} points per 2{sym['x']} speed ({per_unit}; "
                    f"{e.speedup_alone_at_lowest:.2f}{sym['x']} alone at keep {e.lowest_keep_tried:.2f})")
            if e.at_bound:
                text += (f"; tried down to the space's lower bound {e.space_low:g}: only a wider space (--space "
                         "FILE) gives it more speed")
        lines.append(Text(text, style="dim"))
    return lines


def _print_fidelity(console: Console, summary: Summary, sym: dict) -> None:
    """The pick, its rivals and dense trained longer on one seed: does the ranking hold?"""
    v, search = summary.fidelity, summary.run.search
    check = v.check
    if check.skipped:
        factor = f" ({check.factor:g}x the epochs)" if check.factor else ""
        console.print(Text(f"Fidelity check{factor} skipped: {check.skipped}.", style="dim"))
        return
    if not check.runs:
        return
    speeds = {t.trial_id: t.speed(summary.objective) for t in summary.run.trials}
    table = Table(title=f"Fidelity check: {check.epochs} epochs ({check.factor:g}x the search's {search.epochs}), "
                        f"seed {check.seed}", title_justify="left", header_style="bold")
    for title in ("trial", f"speedup ({sym['x']})", "search acc (%)", f"{check.epochs}-epoch acc (%)",
                  f"{sym['delta']} dense (pts)"):
        table.add_column(title, justify="left" if title == "trial" else "right", no_wrap=title == "trial")
    for r in sorted(check.runs, key=lambda r: -(speeds.get(r.trial_id) or 0)):
        is_dense = v.dense is r
        delta = None if v.dense is None or is_dense else (r.acc - v.dense.acc)
        name = "dense" if is_dense else r.trial_id + (" (pick)" if v.pick is r else "")
        table.add_row(Text(name, style="bold green" if v.pick is r else ("bold" if is_dense else "")),
                      fmt.speed(speeds.get(r.trial_id), ""), fmt.pct(r.search_acc), fmt.pct(r.acc), fmt.points(delta))
    rho = "undefined (fewer than 3 runs or no spread)" if v.spearman is None else f"{v.spearman:+.2f}"
    res_pts = summary.resolution_pts
    if v.holds is None:
        verdict = f"not judged: {v.why_not}"
    elif v.holds and v.chosen == v.pick.trial_id:
        verdict = "the pick holds: the same rule on the longer runs chooses it again"
    elif v.holds:
        verdict = f"the pick holds (still within the budget); trial {v.chosen}, faster, now qualifies too"
    elif not v.refutes(res_pts):
        other = f"prefers trial {v.chosen}" if v.chosen else "finds no configuration within the budget"
        verdict = (f"the same rule on the longer runs {other}, by {v.margin_pts:.1f} points: inside one seed's "
                   "noise, so no evidence against the pick")
    else:
        other = f"chooses trial {v.chosen}" if v.chosen else "finds no configuration within the budget"
        verdict = f"the pick does NOT hold: the same rule on the longer runs {other} ({v.margin_pts:.1f} points)"
    res = f"; one seed, differences under {res_pts:.1f} points are noise" if res_pts else "; one seed"
    console.print(table)
    console.print(Text(f"Rank correlation (Spearman) between search and longer accuracy: {rho}; {verdict}{res}.",
                       style="green" if v.holds else ("yellow" if v.holds is False else "")))


def _economics_line(summary: Summary, sym: dict) -> Text:
    """The search's cost against the time the recommendation saves on one full training run."""
    e = summary.economics
    compute = (f", {fmt.duration(e.training_seconds)} of training summed over its parallel runs"
               if e.training_seconds > e.search_seconds else "")
    cost = f"Search cost {fmt.duration(e.search_seconds)} wall{compute} = {e.dense_runs:.1f} dense proxy runs"
    if not e.saving_seconds:
        pick = summary.best
        if summary.instead is None and (pick is None or pick.is_baseline):  # nothing pruned is recommended
            if summary.run.search.status in (SearchStatus.RUNNING, SearchStatus.INTERRUPTED):
                return Text(f"{cost}; nothing is recommended yet (the search has not finished), so no saving can "
                            "be stated.", style="yellow")
            return Text(f"{cost}; it recommends no pruned configuration, so it saves no training time.",
                        style="yellow")
        return Text(f"{cost}; what it recommends is not faster than dense in measured time, so it saves no "
                    "training time.", style="yellow")
    verdict = ("search pays for itself on the first full run" if e.pays else
               f"search's cost is recovered after {e.runs_to_pay:.1f} full runs (goal: at most {PAYS_SHARE:g} of one run's saving)")
    caveat = ""
    if summary.instead is None and summary.selection.kind != PickKind.WITHIN:
        caveat = (f" The pick is not within {summary.max_acc_drop:g} points of dense: this saving comes with its "
                  "accuracy loss.")
    elif summary.fidelity is not None and summary.fidelity.refutes(summary.resolution_pts):
        caveat = " The fidelity check did not confirm the pick: this saving rests on it."
    return Text(
        f"{cost}. At {e.speedup:.2f}{sym['x']} one {e.full_epochs}-epoch run (~{fmt.duration(e.full_run_seconds)} dense at "
        f"the proxy's seconds per epoch) saves ~{fmt.duration(e.saving_seconds)}: the {verdict}. "
        f"Estimate for the search's model, data and image size on this hardware.{caveat}",
        style="green" if e.pays and not caveat else "yellow")


def _pick_vs_shorter(summary: Summary, sym: dict) -> Text | None:
    """The pick against dense trained shorter to its speed, when that is not the plain "above" or a
    replacement (printed with the recommendation): beyond the curve, or below it with no measured
    shorter run as good, and whether the gap is larger than the seeds can resolve."""
    pick, curve = summary.best, summary.shorter
    if curve is None or pick is None or pick.is_baseline or summary.instead is not None:
        return None
    speed = pick.speed(summary.objective)
    if speed is None:
        return None
    x = sym["x"]
    reference = curve.acc_at(speed)
    if reference is None:
        return Text(f"Train-shorter: the pick ({speed:.2f}{x}) is faster than the shortest dense run measured "
                    f"({curve.max_speed:.2f}{x}); it is not compared with training dense shorter.", style="yellow")
    gap = (pick.mean_acc - reference) * 100
    res = summary.resolution_pts
    noise = (f", within noise (the seeds resolve {res:.1f} points)" if res is not None and abs(gap) < res
             else "")
    if summary.beats_shorter.get(pick.trial_id):
        return Text(f"Train-shorter: the pick is {gap:+.2f} points above dense trained shorter to its speed "
                    f"(interpolated, {reference * 100:.2f} %){noise}.", style="yellow" if noise else "green")
    return Text(f"Train-shorter: the pick is {gap:+.2f} points below dense trained shorter to its speed "
                f"(interpolated, {reference * 100:.2f} %){noise}, but no measured shorter run is both as fast "
                f"and as accurate, so it stays the pick; compare it with dense trained shorter before relying "
                f"on it.", style="bold yellow")


def _shorter_table(summary: Summary, sym: dict) -> Table:
    """Dense trained with the schedule compressed to fewer epochs, on the dense seeds."""
    search, base = summary.run.search, summary.run.baseline
    dense_seconds = base.projected_seconds if base is not None else None
    table = Table(title="Dense trained shorter (the alternative to beat), same seeds", title_justify="left",
                  header_style="bold")
    for title in ("epochs", f"speedup ({sym['x']})", "mean acc (%)", "seeds", "train seconds"):
        table.add_column(title, justify="right")
    for r in sorted(summary.shorter.runs, key=lambda r: -r.epochs):
        spread = f" {sym['pm']} {statistics.stdev(r.accs) * 100:.2f}" if len(r.accs) > 1 else ""
        table.add_row(f"{r.epochs} of {search.epochs}", fmt.speed(r.speed(search.epochs), ""),
                      f"{r.mean_acc * 100:.2f}{spread}", str(len(r.accs)), f"{r.seconds:.0f}")
    cost = sum(r.total_seconds for r in summary.shorter.runs)
    dense_runs = f" = {cost / dense_seconds:.1f} dense runs" if dense_seconds else ""
    table.caption = f"cost of this check: {cost:.0f} s of training{dense_runs}"
    return table


def _finalists_table(finalists, summary: Summary, sym: dict) -> Table:
    """Finalists' accuracy over seeds next to their single search run: what the pick rests on."""
    ref, sel = summary.reference, summary.selection
    n = len(finalists[0].accs)
    table = Table(title=f"Finalists re-trained on the dense baseline's seeds ({n} seeds each)",
                  title_justify="left", header_style="bold")
    for title in ("trial", "example keep", "token keep", "attention keep", "search acc (%)",
                  f"mean acc (%) {sym['pm']} std", f"{sym['delta']} dense mean (pts)",
                  "paired 90% interval (pts)", f"speedup ({sym['x']})"):
        table.add_column(title, justify="left" if title == "trial" else "right", no_wrap=title == "trial")
    for t in finalists:
        accs, mean = t.accs, t.mean_acc
        std = statistics.stdev(accs) if len(accs) >= 2 else 0.0
        delta = None if ref.acc is None else mean - ref.acc
        ok = holds(mean, sel.threshold)
        table.add_row(
            Text(t.trial_id, style="bold green" if t is sel.trial else ""),
            fmt.keep(t.config.example_keep), fmt.keep(t.config.token_keep), fmt.keep(t.config.attention_keep),
            fmt.pct(t.val_acc), f"{mean * 100:.2f} {sym['pm']} {std * 100:.2f}",
            Text(fmt.points(delta), style="" if delta is None else ("green" if ok else "red")),
            _interval(summary.run.search.finalist_deltas.get(t.trial_id)),
            fmt.speed(t.speed(summary.objective), ""),
        )
    return table


def _papers_table(summary: Summary, sym: dict) -> Table:
    """The papers' own settings, tried right after dense, against the pick (reports/papers.py)."""
    table = Table(title="The papers' settings, tried first: does the pick beat them?", title_justify="left",
                  header_style="bold")
    for title in ("paper", "example / token / attention keep", "mean acc (%)", f"speedup ({sym['x']})",
                  f"pick {sym['delta']} (pts)", "paired 90% interval (pts)", "verdict"):
        table.add_column(title, justify="left" if title in ("paper", "verdict") else "right")
    styles = {"beats": "green", "beaten": "red", "trade-off": "yellow", "within noise": "yellow"}
    for c in summary.papers:
        t, d = c.trial, c.delta
        keeps = " / ".join(fmt.keep(k) for k in (t.config.example_keep, t.config.token_keep, t.config.attention_keep))
        acc = f"{t.mean_acc * 100:.2f} ({len(t.accs)} seed{'s' if len(t.accs) > 1 else ''})" if t.mean_acc is not None else "-"
        table.add_row(c.name, keeps, acc, fmt.speed(t.speed(summary.objective), ""),
                      fmt.points(d.delta_pts / 100) if d else "-",
                      f"[{fmt.points(d.ci_pts[0] / 100)}, {fmt.points(d.ci_pts[1] / 100)}]" if d else "-",
                      Text(f"{c.verdict}: {c.why}", style=styles.get(c.verdict, "dim")))
    return table


def _interval(delta: dict | None) -> str:
    if not delta or not delta.get("delta_ci_pts"):
        return "-"
    low, high = delta["delta_ci_pts"]
    return f"[{fmt.points(low / 100)}, {fmt.points(high / 100)}]"


def _clip(line: str, width: int = 160) -> str:
    line = line.strip()
    return line if len(line) <= width else line[: width - 3] + "..."
