"""Tests for trilevel.reports: loading, Pareto selection, exports, plot, live progress, CLI.

Run directories are written by hand here, so these tests need neither Ray nor training.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trilevel.core.config import RunConfig, SparsityConfig
from trilevel.core.errors import UserError
from trilevel.store.run_store import TrialRecord
from trilevel.reports import (
    LiveProgress,
    hypervolume,
    knee,
    load_run,
    pareto_front,
    render_report,
    select_best,
    summarize,
    write_outputs,
)
from trilevel.reports.cli import main
from trilevel.reports.selection import choose_finalists, dense_reference

BASE_RUN = RunConfig(model="deit_t", dataset="cifar10", data="/data/cifar", epochs=10,
                     model_kwargs={"depth": 4, "embed_dim": 64}, min_lr=1e-5)


def trial(trial_id, status="completed", acc=None, speedup=None, *, ex=1.0, tok=1.0, att=1.0,
          epochs=10, flops=None, baseline=False, error=None, **config):
    """One trials.jsonl record in the search's format."""
    cfg = SparsityConfig(example_keep=ex, token_keep=tok, attention_keep=att, **config).to_dict()
    return {
        "trial_id": trial_id, "config": cfg, "status": status, "epochs": epochs, "val_acc": acc,
        "train_seconds": 10.0 * epochs / 10, "projected_seconds": 100.0 / (speedup or 1.0),
        "speedup": speedup, "flops_per_image": 1e9, "flops_speedup": flops, "is_baseline": baseline,
        "error": error,
        "history": [{"epoch": e, "val_acc": acc or 0.0, "train_seconds": float(e)} for e in range(1, epochs + 1)],
    }


# Front: g (0.81, 0.9x), base (0.80, 1x), a (0.798, 1.5x), b (0.79, 2x), c (0.70, 3x).
TRIALS = [
    trial("base", acc=0.80, speedup=1.0, flops=1.0, baseline=True),
    trial("a", acc=0.798, speedup=1.5, flops=1.6, ex=0.7, tok=0.8, att=0.9),
    trial("b", acc=0.79, speedup=2.0, flops=2.2, ex=0.5, tok=0.7, att=0.8, schedule="linear"),
    trial("c", acc=0.70, speedup=3.0, flops=3.5, ex=0.3, tok=0.5, att=0.5),
    trial("d_dominated", acc=0.75, speedup=1.4, flops=1.5, ex=0.8),
    trial("e_dominated", acc=0.69, speedup=2.5, flops=2.6, tok=0.4),
    trial("g", acc=0.81, speedup=0.9, flops=1.1, att=0.95),
    trial("s_stopped", status="stopped_early", acc=0.60, speedup=3.5, epochs=2, tok=0.3),
    trial("f_failed", status="failed", acc=None, speedup=None, epochs=1, tok=0.2,
          error="Traceback (most recent call last):\n  ...\nRuntimeError: CUDA out of memory"),
    trial("r_running", status="running", acc=0.85, speedup=4.0, epochs=3, ex=0.2),
]
FRONT_IDS = {"g", "base", "a", "b", "c"}


def search_json(**changes):
    data = {
        "version": 1, "name": "demo", "model": "deit_t", "dataset": "cifar10", "space": "trilevel",
        "objective": "time", "sampler": "tpe", "budget": 20, "epochs": 10, "grace_epochs": 2,
        "reduction_factor": 3, "max_acc_drop": 0.5, "seed": 0,
        "command": "trilevel-search --space trilevel --budget 20", "started": "2026-01-01T10:00:00",
        "finished": "2026-01-01T11:02:03", "wall_seconds": 3723.0, "status": "finished",
        "run_config": BASE_RUN.to_dict(), "baseline_accs": [0.80, 0.81, 0.79],
        "varied": ["example_keep", "token_keep", "attention_keep", "schedule"],
    }
    data.update(changes)
    return data


def make_run(path: Path, trials=TRIALS, tail: str = "", **search) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "search.json").write_text(json.dumps(search_json(**search)))
    (path / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials) + tail)
    return path


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "run")


def report_text(summary) -> str:
    from rich.console import Console

    buf = io.StringIO()
    render_report(summary, Console(file=buf, width=220, force_terminal=False, color_system=None))
    return buf.getvalue()


# -- loading -------------------------------------------------------------------------------


def test_load_run_typed_records(run_dir):
    run = load_run(run_dir)
    assert [t.trial_id for t in run.trials] == [t["trial_id"] for t in TRIALS]
    assert run.search.run_config == BASE_RUN
    assert run.baseline.trial_id == "base"
    assert run.trials[1].config == SparsityConfig(example_keep=0.7, token_keep=0.8, attention_keep=0.9)
    assert run.warnings == []


def test_later_line_replaces_earlier_state_of_same_trial(tmp_path):
    early = trial("a", status="running", acc=0.5, speedup=1.5, epochs=2)
    run = load_run(make_run(tmp_path / "r", trials=[early] + TRIALS))
    assert len(run.trials) == len(TRIALS)
    assert next(t for t in run.trials if t.trial_id == "a").status == "completed"


def test_truncated_last_line_tolerated_with_warning(tmp_path):
    run = load_run(make_run(tmp_path / "r", tail='{"trial_id": "half", "stat'))
    assert len(run.trials) == len(TRIALS)
    assert len(run.warnings) == 1 and "half-written last line" in run.warnings[0]
    assert "warning:" in report_text(summarize(run))


def test_corrupt_middle_line_is_a_clear_error(tmp_path):
    path = make_run(tmp_path / "r")
    lines = (path / "trials.jsonl").read_text().splitlines()
    lines[2] = lines[2][:25]
    (path / "trials.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"trials\.jsonl line 3 is corrupt"):
        load_run(path)


def test_corrupt_search_json_is_a_clear_error(tmp_path):
    path = make_run(tmp_path / "r")
    (path / "search.json").write_text('{"version": 1, "name": ')
    with pytest.raises(UserError, match=r"search\.json is corrupt"):
        load_run(path)


def test_bad_record_names_file_and_line(tmp_path):
    bad = dict(TRIALS[1], status="exploded")
    with pytest.raises(UserError, match=r"trials\.jsonl line 2: trial status"):
        load_run(make_run(tmp_path / "r", trials=[TRIALS[0], bad, TRIALS[2]]))


# -- selection -----------------------------------------------------------------------------


def test_pareto_front_is_exactly_the_non_dominated_completed_trials(run_dir):
    run = load_run(run_dir)
    front = pareto_front(run.trials)
    assert {t.trial_id for t in front} == FRONT_IDS
    assert [t.trial_id for t in front] == ["c", "b", "a", "base", "g"]  # fastest first


def test_pareto_front_flops_objective(tmp_path):
    trials = [trial("base", acc=0.8, speedup=1.0, flops=1.0, baseline=True),
              trial("x", acc=0.79, speedup=2.0, flops=1.2),
              trial("y", acc=0.79, speedup=1.5, flops=2.5)]
    run = load_run(make_run(tmp_path / "r", trials=trials, objective="flops", max_acc_drop=2.0))
    assert {t.trial_id for t in pareto_front(run.trials, "flops")} == {"base", "y"}
    assert summarize(run).best.trial_id == "y"


def test_report_lists_exactly_the_front(run_dir):
    text = report_text(summarize(load_run(run_dir)))
    table = text.split("Pareto-optimal configurations")[1].split("Dense accuracy")[0]
    for trial_id in FRONT_IDS:
        assert trial_id in table
    for trial_id in ("d_dominated", "e_dominated", "s_stopped", "f_failed", "r_running"):
        assert trial_id not in table
    assert "best" in table and "dense" in table
    assert "schedule" in table and "token mode" not in table  # only varied extras
    assert "80.00 ± 1.00 %" in text and "min 79.00 .. max 81.00" in text
    assert "f_failed: RuntimeError: CUDA out of memory" in text
    assert "7 completed, 1 stopped early, 1 failed, 1 running" in text
    assert "Retried" not in text
    assert "1h02m03s" in text
    command = next(line.strip() for line in text.splitlines() if "trilevel-train" in line)
    assert command.startswith("trilevel-train --recipe deit --sparsity ") and "best.yaml --model" in command
    assert "--data /data/cifar" in command and command.endswith("--epochs 300")
    assert "--batch-size" not in command and "--lr" not in command and "subset" not in command


def test_report_shows_retried_trials_and_why(tmp_path):
    retried = {**trial("h_retried", status="completed", acc=0.5, speedup=2.0, ex=0.6), "retries": 1,
               "resumed_from": 2, "retry_errors": ["ray.exceptions.ActorDiedError: The actor died\n"
                                                   "the actor's node was terminated unexpectedly"]}
    text = report_text(summarize(load_run(make_run(tmp_path / "run", TRIALS + [retried]))))
    assert "Retried trials (1):" in text
    assert "h_retried: 1x, continued from epoch 2, completed; after: the actor's node was terminated" in text


def test_best_is_fastest_within_budget(run_dir):
    run = load_run(run_dir)
    front = pareto_front(run.trials)
    ref = dense_reference(run)
    assert ref.acc == pytest.approx(0.80) and ref.source == "seeds"
    sel = select_best(front, ref, 0.5)  # threshold 79.5 %
    assert (sel.trial.trial_id, sel.kind) == ("a", "within")
    sel = select_best(front, ref, 1.0)  # threshold 79.0 %: b qualifies and is faster
    assert (sel.trial.trial_id, sel.kind) == ("b", "within")


def test_none_qualifies_selects_knee(run_dir):
    run = load_run(run_dir)
    front = pareto_front(run.trials)
    sel = select_best(front, dense_reference(run), 0.1)  # threshold 79.9 %: only g (slower than dense)
    assert sel.kind == "knee"
    assert sel.trial.trial_id == "b" == knee(front).trial_id  # farthest from the g-c line
    assert "no pruned configuration within 0.1 points" in sel.note
    text = report_text(summarize(run, max_acc_drop=0.1))
    assert "None within 0.1 points of dense accuracy; knee marked: trial b" in text


def test_finalists_are_the_pick_its_safer_alternatives_then_near_misses(run_dir):
    run = load_run(run_dir)
    front, ref = pareto_front(run.trials), dense_reference(run)
    # threshold 79.0 %: b (2x) and a (1.5x) qualify, fastest first; c (70 %) is the near miss
    assert [t.trial_id for t in choose_finalists(front, ref, 1.0)] == ["b", "a", "c"]
    assert [t.trial_id for t in choose_finalists(front, ref, 1.0, k=1)] == ["b"]
    # never the baseline nor g (slower than dense); when none qualifies, the near misses, most accurate first
    assert [t.trial_id for t in choose_finalists(front, ref, 0.1)] == ["a", "b", "c"]


def test_seed_averaged_finalists_decide_the_pick(tmp_path):
    # b qualifies on its search seed (79 % >= 79 %) but falls to 72 % and 74 % on the dense seeds; a holds
    run = load_run(make_run(tmp_path / "r", finalist_accs={"b": [0.72, 0.74], "a": [0.80, 0.79]}))
    by_id = {t.trial_id: t for t in run.trials}
    assert by_id["b"].accs == [0.79, 0.72, 0.74] and by_id["b"].mean_acc == pytest.approx(0.75)
    assert by_id["c"].seed_accs == [] and by_id["c"].mean_acc == pytest.approx(0.70)
    summary = summarize(run, max_acc_drop=1.0)
    assert (summary.best.trial_id, summary.selection.kind) == ("a", "within")  # single-seed rule picks b
    assert "mean over 3 seeds" in summary.selection.note
    text = report_text(summary)
    assert "Finalists re-trained on the dense baseline's seeds (3 seeds each)" in text
    assert "75.00 ± 3.61" in text or "75.00 +/- 3.61" in text
    assert "Best: trial a, 1.50" in text and "(mean of 3 seeds)" in text
    written = write_outputs(run.path, 1.0, plot=False).written
    assert "(mean 79.60% over 3 seeds)" in written["best.yaml"].read_text()
    # no finalist holds: the one the seeds measured closest to dense (b, 75.0 %; a 73.6 %), not the one-seed knee
    run = load_run(make_run(tmp_path / "s", finalist_accs={"b": [0.72, 0.74], "a": [0.70, 0.71]}))
    summary = summarize(run, max_acc_drop=1.0)
    assert (summary.best.trial_id, summary.selection.kind) == ("b", "closest")
    assert "no finalist within 1 points of dense accuracy, mean over 3 seeds" in summary.selection.note
    text = report_text(summary)
    assert "No finalist within 1 points of dense accuracy over 3 seeds; closest marked: trial b, 2.00" in text
    assert "★ closest" in text or "* closest" in text  # its row in the front table is marked


def test_bad_finalist_accs_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="finalist_accs"):
        load_run(make_run(tmp_path / "r", finalist_accs=[0.5]))


def test_reference_falls_back_to_baseline_trial(tmp_path):
    run = load_run(make_run(tmp_path / "r", baseline_accs=[]))
    ref = dense_reference(run)
    assert (ref.acc, ref.source) == (0.80, "baseline trial")
    assert summarize(run).best.trial_id == "a"


def test_knee_of_tiny_fronts():
    assert knee([]) is None
    from trilevel.store.run_store import TrialRecord

    trial_from_dict = TrialRecord.from_dict

    one = [trial_from_dict(trial("x", acc=0.7, speedup=2.0))]
    assert knee(one).trial_id == "x"
    two = [trial_from_dict(trial("x", acc=0.7, speedup=2.0)), trial_from_dict(trial("y", acc=0.8, speedup=1.0))]
    assert knee(two).trial_id == "y"  # tie: the more accurate one


def test_hypervolume_known_values(run_dir):
    assert hypervolume([(0.8, 2.0)]) == pytest.approx(1.6)
    assert hypervolume([(0.9, 1.0), (0.8, 2.0), (0.6, 3.0)]) == pytest.approx(0.9 + 0.8 + 0.6)
    # A dominated point adds nothing.
    assert hypervolume([(0.9, 1.0), (0.8, 2.0), (0.6, 3.0), (0.5, 1.5)]) == pytest.approx(2.3)
    assert hypervolume([]) == 0.0
    # The fixture front: g .81*.9 + base .80*.1 + a .798*.5 + b .79*.5 + c .70*1.
    assert summarize(load_run(run_dir)).hypervolume == pytest.approx(0.729 + 0.08 + 0.399 + 0.395 + 0.70)


# -- exports -------------------------------------------------------------------------------


def test_write_outputs_exports_round_trip(run_dir):
    summary = write_outputs(run_dir)
    best = RunConfig.load(run_dir / "best.yaml")
    a = next(t for t in TRIALS if t["trial_id"] == "a")
    assert best == BASE_RUN.replace(sparsity=SparsityConfig.from_dict(a["config"]))
    assert best.sparsity.to_dict() == a["config"]
    assert RunConfig.from_dict(json.loads((run_dir / "best.json").read_text())) == best

    pareto = yaml.safe_load((run_dir / "pareto.yaml").read_text())
    assert list(pareto) == ["c", "b", "a", "base", "g"]
    for trial_id, cfg in pareto.items():
        record = next(t for t in TRIALS if t["trial_id"] == trial_id)
        assert RunConfig.from_dict(cfg).sparsity.to_dict() == record["config"]
    records = json.loads((run_dir / "pareto.json").read_text())
    assert [r["trial_id"] for r in records] == ["c", "b", "a", "base", "g"]
    stored = next(t for t in TRIALS if t["trial_id"] == "c")
    assert {k: records[0][k] for k in stored} == stored  # the record as stored, every typed field added
    assert TrialRecord.from_dict(records[0]) == TrialRecord.from_dict(stored)

    assert set(summary.written) >= {"pareto.json", "pareto.yaml", "best.yaml", "best.json", "pareto.png"}
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes leave no temp files


def test_pareto_png_is_valid(run_dir):
    from PIL import Image

    write_outputs(run_dir)
    png = run_dir / "pareto.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        image.verify()
        assert image.format == "PNG"


def test_the_plot_shows_what_the_verdicts_compare(tmp_path):
    """The pick, dense and the finalists are drawn at their mean over seeds (what the pick rule and
    the train-shorter verdict compare), beside the train-shorter curve; the front at its search runs."""
    from trilevel.reports.plot import figure

    run_dir = make_run(tmp_path / "r", finalist_accs={"a": [0.80, 0.79], "b": [0.70, 0.72]},
                       train_shorter=[{"epochs": 5, "seconds": 50.0, "accs": [0.70, 0.70, 0.70]}])
    summary = summarize(load_run(run_dir))
    ax = figure(summary).axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    star = by_label["best (within budget)"].get_offsets()
    assert summary.best.trial_id == "a" and list(star[0]) == pytest.approx([1.5, 100 * (0.798 + 0.80 + 0.79) / 3])
    assert list(by_label["dense (mean of 3 seeds)"].get_offsets()[0]) == pytest.approx([1.0, 80.0])
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["dense trained shorter (mean of seeds)"].get_ydata()) == pytest.approx([80.0, 70.0])
    finalists = {c.get_label(): c for c in ax.containers}["finalists: mean (min..max) of 3 seeds"]
    assert sorted(finalists.lines[0].get_ydata()) == pytest.approx([100 * 2.21 / 3, 100 * 2.388 / 3])
    # The terminal table says which accuracy is which.
    assert "val acc: each trial's search run; the pick and 'vs dense shorter' use the finalists' means" in report_text(
        summary)


def test_html_skipped_gracefully_without_plotly(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)  # makes `import plotly...` raise ImportError
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    summary = write_outputs(run_dir)
    assert not (run_dir / "pareto.html").exists()
    assert any("plotly" in note for note in summary.notes)


def test_no_plot_and_no_completed_trial(tmp_path):
    path = make_run(tmp_path / "r", trials=[TRIALS[7], TRIALS[8], TRIALS[9]])
    summary = write_outputs(path, plot=False)
    assert summary.best is None and summary.front == []
    assert not (path / "best.yaml").exists() and not (path / "pareto.png").exists()
    assert json.loads((path / "pareto.json").read_text()) == []
    assert "No completed trial yet" in report_text(summary)


# -- live progress -------------------------------------------------------------------------


def feed(progress: LiveProgress) -> int:
    """Per-epoch 'running' updates then each trial's final state; returns finished count."""
    for rec in TRIALS:
        for epoch in range(1, 3):
            progress.update(dict(rec, status="running", epochs=epoch))
    finished = 0
    for rec in TRIALS:
        progress.update(rec)
        finished += rec["status"] != "running"
    progress.update(TRIALS[0])  # a repeated final report must not print twice
    return finished


def test_live_progress_plain_lines_without_control_chars():
    stream = io.StringIO()
    progress = LiveProgress(budget=20, max_acc_drop=0.5, stream=stream, baseline_accs=[0.80, 0.81, 0.79])
    pickle.loads(pickle.dumps(progress))  # no live objects before start()
    progress.start()
    finished = feed(progress)
    progress.stop()
    out = stream.getvalue()
    assert "\x1b" not in out and "\r" not in out
    lines = out.splitlines()
    assert len(lines) == finished == 9
    assert all(line.isascii() and line.isprintable() for line in lines)
    assert lines[0].startswith("[1/20] trial base completed (dense baseline): acc 80.00% (+0.00 pts) speedup 1.00x")
    assert lines[-1].startswith("[9/20] trial f_failed failed: error: RuntimeError: CUDA out of memory")
    assert "best 1.50x within 0.5 pts" in lines[-1]
    assert "front 5" in lines[-1]
    clone = pickle.loads(pickle.dumps(progress))  # still picklable after use, with its state
    assert clone._finished == progress._finished and clone._live is None


def test_live_progress_terminal_view():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with LiveProgress(budget=20, max_acc_drop=0.5, console=console) as progress:
        feed(progress)
        progress.update({"trial_id": "junk"})  # malformed records never raise
    out = buf.getvalue()
    assert "trials 9/20 finished" in out and "Pareto front 5" in out


# -- CLI -----------------------------------------------------------------------------------


def test_cli_renders_and_exports(run_dir, capsys):
    assert main([str(run_dir), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "Pareto-optimal configurations" in out and "best.yaml" in out
    assert (run_dir / "best.yaml").exists() and not (run_dir / "pareto.png").exists()


@pytest.mark.parametrize("kind", ["missing", "empty_dir", "empty_trials", "bad_drop"])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, kind):
    path = tmp_path / "run"
    args = [str(path)]
    if kind == "empty_dir":
        path.mkdir()
    elif kind == "empty_trials":
        make_run(path, trials=[])
    elif kind == "bad_drop":
        make_run(path)
        args += ["--max-acc-drop", "-1"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("trilevel-report: error:") and "Traceback" not in captured.err


def test_console_script_missing_dir(tmp_path):
    script = Path(sys.executable).parent / "trilevel-report"
    result = subprocess.run([str(script), str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"trilevel-report: error: run directory not found: {tmp_path / 'nope'}"]


# -- validity, chance level, resolution ------------------------------------------------------

VALID = {"learned": True, "dense_mean": 0.80, "dense_sd": 0.01, "chance": 0.10, "threshold": 0.20, "seeds": 3}


def test_dense_that_did_not_learn_ranks_and_exports_nothing(tmp_path):
    path = make_run(tmp_path / "r", status="not_learned",
                    validity={**VALID, "learned": False, "dense_mean": 0.11, "threshold": 0.20})
    (path / "best.yaml").write_text("stale: export\n")  # from an earlier report: must not survive
    summary = write_outputs(path)
    assert summary.selection.kind == "not_learned" and summary.front == [] and summary.best is None
    assert not (path / "best.yaml").exists() and not (path / "best.json").exists()
    text = report_text(summary)
    assert "did not learn" in text and "Nothing ranked or exported" in text and "Best" not in text


def test_chance_level_trials_are_never_ranked_finalists_or_picked(tmp_path):
    trials = TRIALS + [trial("z_chance", acc=0.10, speedup=4.19, flops=4.0, ex=0.5, tok=0.5, att=0.3)]
    run = load_run(make_run(tmp_path / "r", trials=trials, validity=VALID))
    summary = summarize(run)
    assert "z_chance" not in {t.trial_id for t in summary.front}
    assert {t.trial_id for t in summary.front} == FRONT_IDS
    # without a verdict (an older search) the same trial is on the front
    old = load_run(make_run(tmp_path / "old", trials=trials))
    assert "z_chance" in {t.trial_id for t in summarize(old).front}


def test_closest_finalist_is_never_one_at_chance(tmp_path):
    # both finalists miss the budget; c's mean over seeds is at chance: not "closest"
    run = load_run(make_run(tmp_path / "r", validity=VALID, finalist_accs={"b": [0.15, 0.12], "c": [0.10, 0.11]}))
    summary = summarize(run)
    assert summary.selection.kind == "none" and summary.best is None
    assert "chance level" in summary.selection.note
    run = load_run(make_run(tmp_path / "r2", validity=VALID, finalist_accs={"b": [0.70, 0.72], "c": [0.10, 0.11]}))
    assert summarize(run).selection.kind == "closest" and summarize(run).best.trial_id == "b"


def test_report_states_resolution_rule_and_within_noise(tmp_path):
    deltas = {"a": {"delta_pts": -0.2, "delta_ci_pts": [-3.1, 2.7], "pairs": 3}}
    run = load_run(make_run(tmp_path / "r", validity=VALID, resolution_pts=2.9, num_val=180,
                            finalist_accs={"a": [0.80, 0.80]}, finalist_deltas=deltas))
    summary = summarize(run)
    assert summary.within_noise and summary.selection.kind == "within"
    text = report_text(summary)
    assert "finer than 3 seeds resolve (2.9 points at 90%)" in text
    assert "Resolution: with 3 paired seeds" in text and "Pick rule:" in text
    assert "Best (within noise)" in text and "[-3.10, +2.70]" in text
    # a budget above the resolution is not "within noise"
    assert not summarize(run, max_acc_drop=3.0).within_noise


def test_statuses_are_string_enums_read_validated_and_written_plain():
    """One declaration of each status (store/run_store.py): records read back carry the enum, compare
    equal to the plain string, and are written as it; an unknown status is one clear error."""
    import json as _json

    from trilevel.core import UserError as _UserError
    from trilevel.store.run_store import SearchStatus, TrialRecord, TrialStatus, config_key

    record = TrialRecord.from_dict({"trial_id": "a", "status": "stopped_early"})
    assert record.status is TrialStatus.STOPPED_EARLY and record.status == "stopped_early"
    assert _json.loads(_json.dumps(record.to_dict()))["status"] == "stopped_early"
    assert f"{record.status}" == str(record.status) == "stopped_early"
    with pytest.raises(_UserError, match="trial status must be one of running, completed"):
        TrialRecord.from_dict({"trial_id": "a", "status": "done"})
    assert [s.value for s in SearchStatus] == ["running", "finished", "interrupted", "failed", "not_learned"]
    assert config_key({"b": 1.0, "a": 0.5}) == config_key({"a": 0.5, "b": 1.0})


def test_the_cost_line_says_nothing_is_recommended_yet_before_a_pick(tmp_path):
    """A search stopped with dense alone finished: no saving is stated, and no verdict on speed is
    read into it; once finished with no pruned configuration to recommend, it says that instead."""
    only_dense = [trial("base", acc=0.80, speedup=1.0, flops=1.0, baseline=True),
                  trial("r_running", status="running", acc=0.5, speedup=2.0, epochs=3, ex=0.5)]
    stopped = report_text(summarize(load_run(make_run(tmp_path / "i", only_dense, status="interrupted",
                                                      finished=None))))
    line = next(line for line in stopped.splitlines() if line.startswith("Search cost"))
    assert "nothing is recommended yet (the search has not finished)" in line and "not faster" not in line
    done = report_text(summarize(load_run(make_run(tmp_path / "f", only_dense[:1]))))
    line = next(line for line in done.splitlines() if line.startswith("Search cost"))
    assert "recommends no pruned configuration" in line
    # picked on FLOPs, slower in measured time: the economics (always measured time) say so
    slower = [*only_dense[:1], trial("slow", acc=0.80, speedup=0.9, flops=1.5, att=0.95)]
    line = next(line for line in report_text(summarize(load_run(make_run(tmp_path / "s", slower, objective="flops"))))
                .splitlines() if line.startswith("Search cost"))
    assert "not faster than dense in measured time" in line
