"""Search: spaces, the Optuna bridge, and end-to-end `trilevel-search` runs on a tiny ViT."""

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from trilevel.core import RunConfig, SparsityConfig, UserError
from trilevel.reports.pareto import pareto_indices
from trilevel.spaces import SPACES, load_space

BIN = Path(sys.executable).parent
BASE = """\
model: vit_t
model_kwargs: {depth: 2, embed_dim: 64, num_heads: 4}
img_size: 16
patch_size: 4
batch_size: 32
lr: 0.003
warmup: 0.1
drop_path: 0.0
augment: false
"""


# --- spaces ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPACES)
def test_every_sampled_point_is_a_valid_sparsity_config(name):
    space = load_space(name)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    for _ in range(30):
        trial = study.ask(space.params)
        config = space.to_sparsity(trial.params)
        assert isinstance(config, SparsityConfig)
        for key, value in trial.params.items():
            assert getattr(config, key) == value
        for key, value in space.fixed.items():
            assert getattr(config, key) == value
        study.tell(trial, [0.5, 1.0])
    assert space.to_sparsity(space.dense_point()).is_dense


def test_tri_level_space_matches_the_issue():
    space = load_space("tri-level")
    assert {k: (d.low, d.high) for k, d in space.params.items()} == {
        "example_keep": (0.5, 1.0), "token_keep": (0.5, 1.0), "attention_keep": (0.1, 1.0)}
    assert space.fixed["schedule"] == "warmup_cosine"


def test_custom_space_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: tri-level\nparams:\n  example_criterion: {choices: [forgetting, loss]}\n"
                    "fixed:\n  attention_keep: 1.0\n")
    space = load_space(str(path))
    assert set(space.params) == {"example_keep", "token_keep", "example_criterion"}
    assert space.fixed["attention_keep"] == 1.0


@pytest.mark.parametrize("text,pattern", [
    ("params:\n  token_kep: {low: 0.5, high: 1}\n", "unknown parameter 'token_kep'.*token_keep"),
    ("params:\n  token_keep: {low: 0.0, high: 1}\n", "range must lie in"),
    ("params:\n  token_keep: {low: 0.5, high: 0.9}\n", "must include 1.0"),
    ("params:\n  token_keep: [0.5, 1]\n", "must be \\{low"),
    ("parms: {}\n", "unknown key 'parms'.*params"),
    ("params: [\n", "malformed YAML"),
])
def test_bad_space_files(tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=pattern):
        load_space(str(path))
    with pytest.raises(UserError, match="unknown space 'tri_level'.*tri-level"):
        load_space("tri_level")


# --- the Optuna bridge -----------------------------------------------------------------------------
def test_early_stopped_trials_reach_optuna_as_pruned():
    from trilevel.search import StudySearcher

    space = load_space("tri-level")
    searcher = StudySearcher(space=dict(space.params), metric=["val_acc", "cost"], mode=["max", "min"],
                             sampler="tpe", max_epochs=5)
    for tid in "abcd":
        searcher.suggest(tid)
    searcher.on_trial_complete("a", {"epoch": 5, "val_acc": 0.9, "cost": 10.0})
    searcher.on_trial_complete("b", {"epoch": 1, "val_acc": 0.99, "cost": 1.0})
    searcher.on_trial_complete("c", None, error=True)
    searcher.on_trial_complete("d", {"epoch": 5, "val_acc": 0.8, "cost": 5.0})
    states = [t.state for t in searcher.study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert {t.number for t in searcher.study.best_trials} == {0, 3}  # the pruned one is not on the front


def test_study_lives_in_the_run_dir_and_survives_pickling(tmp_path):
    import pickle

    from trilevel.store.run_store import TRIALS_FILE
    from trilevel.search.searcher import STUDY_FILE, StudySearcher, journal_storage, reconcile_study

    space = load_space("tri-level")
    dense = space.dense_point()
    kwargs = dict(space=dict(space.params), metric=["val_acc", "projected_seconds"], mode=["max", "min"], sampler="tpe",
                  study_name="s", points_to_evaluate=[dense], max_epochs=5, run_dir=str(tmp_path))
    searcher = StudySearcher(**kwargs)
    assert searcher.suggest("a") == dense  # the enqueued dense point first
    b = searcher.suggest("b")
    searcher.suggest("c")
    searcher.suggest("d")
    searcher.on_trial_complete("a", {"epoch": 5, "val_acc": 0.9, "projected_seconds": 10.0})
    # Ray pickles the searcher (tuner.pkl) and restores it after a crash: the study comes from the file
    revived = pickle.loads(pickle.dumps(searcher))
    revived.on_trial_complete("b", {"epoch": 2, "val_acc": 0.5, "projected_seconds": 4.0})  # found by its Ray id
    revived.on_trial_complete("b", {"epoch": 5, "val_acc": 0.5, "projected_seconds": 4.0})  # told once only
    # after the Tuner: "c" is recorded as lost (failed), "d" as running (interrupted: it resumes later)
    (tmp_path / TRIALS_FILE).write_text(json.dumps({"trial_id": "c", "params": {}, "status": "failed"}) + "\n"
                                        + json.dumps({"trial_id": "d", "params": {}, "status": "running"}) + "\n")
    assert reconcile_study(tmp_path, "s", ["val_acc", "projected_seconds"]) == 1
    study = optuna.load_study(study_name="s", storage=journal_storage(tmp_path / STUDY_FILE))  # as optuna-dashboard
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                               TrialState.RUNNING]
    assert [t.user_attrs["ray_trial_id"] for t in study.trials] == ["a", "b", "c", "d"]
    assert study.trials[1].params == b
    # a new searcher on the same run directory continues the study and does not enqueue dense again
    again = StudySearcher(**kwargs)
    assert again.suggest("e") != dense and len(again.study.trials) == 5
    again.on_trial_complete("d", {"epoch": 5, "val_acc": 0.7, "projected_seconds": 3.0})  # the resumed trial ends
    assert again.study.trials[3].state == TrialState.COMPLETE


def test_repeat_proposals_learn_the_recorded_outcome_and_are_not_run():
    from optuna.distributions import CategoricalDistribution

    from trilevel.search.searcher import MAX_REPEATS, StudySearcher

    from trilevel.store.run_store import TrialRecord

    records = {}
    searcher = StudySearcher(space={"x": CategoricalDistribution([0.5, 1.0])}, metric=["val_acc", "projected_seconds"],
                             mode=["max", "min"], sampler="random", max_epochs=3, records=lambda: records)
    first = searcher.suggest("t0")
    records["t0"] = TrialRecord("t0", "completed", params=first, val_acc=0.8, projected_seconds=2.0)
    searcher.on_trial_complete("t0", {"epoch": 3, "val_acc": 0.8, "projected_seconds": 2.0})
    second = searcher.suggest("t1")
    assert second != first  # a repeat of the first was told, not returned
    records["t1"] = TrialRecord("t1", params=second)
    assert searcher.suggest("t2") == StudySearcher.FINISHED  # both points tried: the space is exhausted
    assert searcher.repeats >= MAX_REPEATS
    told = [t for t in searcher.study.trials if t.state != TrialState.RUNNING]
    assert {t.state for t in told[1:]} <= {TrialState.COMPLETE, TrialState.FAIL}


def test_drop_checkpoints_removes_only_checkpoint_folders(tmp_path):
    from trilevel.search.runner import drop_checkpoints

    for folder in ("run_trial_a/checkpoint_000001", "run_trial_a/checkpoint_000002", "fidelity/run_trial_b/checkpoint_000000"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "checkpoint.pt").write_bytes(b"x" * 100)
    (tmp_path / "run_trial_a" / "result.json").write_text("{}")
    (tmp_path / "trials.jsonl").write_text("")
    assert drop_checkpoints(tmp_path) == 300
    assert not list(tmp_path.glob("**/checkpoint_*"))
    assert (tmp_path / "run_trial_a" / "result.json").exists() and (tmp_path / "trials.jsonl").exists()
    assert drop_checkpoints(tmp_path) == 0


def test_first_rung_waits_for_the_keep_schedule():
    from trilevel.search.options import auto_grace

    tri = load_space("tri-level")
    assert tri.settled_at() == pytest.approx(110 / 300)  # the paper's warm-up 10 + decay 100 of 300
    assert auto_grace(tri.settled_at(), 9, 3) == 3  # ceil(0.367 * 9) = 4, capped so a rung remains
    assert auto_grace(tri.settled_at(), 30, 2) == 11  # reduction factor 2 leaves room for it
    assert auto_grace(0.0, 9, 3) == 1  # constant schedule: settled from the start
    assert load_space("full").settled_at() == 1.0  # linear/cosine ramps end only at the end
    from trilevel.spaces import SearchSpace
    from optuna.distributions import FloatDistribution

    searched = SearchSpace("d", {"token_keep": FloatDistribution(0.5, 1.0),
                                 "schedule_decay": FloatDistribution(0.1, 0.5)}, {"schedule_warmup": 0.1})
    assert searched.settled_at() == pytest.approx(0.6)  # the longest decay the space can sample
    assert auto_grace(1.0, 2, 3) == 1


def test_unknown_sampler():
    from trilevel.search import make_sampler

    with pytest.raises(UserError, match="did you mean 'nsga2'"):
        make_sampler("nsga", 0)


def test_a_user_registers_a_sampler_and_a_space(tmp_path):
    """Registries, as for datasets: a user's own Optuna sampler and search space by name."""
    from optuna.distributions import FloatDistribution

    from trilevel.search import list_samplers, make_sampler, register_sampler
    from trilevel.search import SearchOptions
    from trilevel.spaces import SearchSpace, list_spaces, register_space

    register_sampler("qmc-test", lambda seed: optuna.samplers.QMCSampler(seed=seed, scramble=True), replace=True)
    assert isinstance(make_sampler("qmc-test", 3), optuna.samplers.QMCSampler)
    assert list_samplers()[:4] == ("tpe", "nsga2", "gp", "random") and "qmc-test" in list_samplers()
    with pytest.raises(ValueError, match="already registered"):
        register_sampler("tpe", lambda seed: optuna.samplers.RandomSampler(seed=seed))
    mine = SearchSpace("tokens-only-test", {"token_keep": FloatDistribution(0.3, 1.0)},
                       {"token_mode": "input", "schedule": "constant"})
    register_space(mine, replace=True)
    assert load_space("tokens-only-test") is mine and "tokens-only-test" in list_spaces()
    with pytest.raises(ValueError, match="already registered"):
        register_space(SearchSpace("tri-level", mine.params, mine.fixed))
    path = tmp_path / "wider.yaml"  # a space file can build on a registered space
    path.write_text("base: tokens-only-test\nparams:\n  attention_keep: {low: 0.2, high: 1.0}\n")
    assert set(load_space(str(path)).params) == {"token_keep", "attention_keep"}
    assert SearchOptions(run=RunConfig(), space="tokens-only-test", sampler="qmc-test").validate() is mine


# --- end to end ------------------------------------------------------------------------------------
def search_cmd(tmp_path, *extra):
    base = tmp_path / "base.yaml"
    base.write_text(BASE)
    # the train-shorter phase and the fidelity check only where a test asks for them (they cost runs)
    shorter = () if "--train-shorter" in extra else ("--train-shorter", "none")
    longer = () if "--fidelity" in extra else ("--fidelity", "off")
    return [str(BIN / "trilevel-search"), "--config", str(base), "--output", str(tmp_path / "runs"),
            "--name", "t", "--no-live", *shorter, *longer, *extra]


def env(**extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def records(run_dir):
    out = {}
    for line in (run_dir / "trials.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["trial_id"]] = r
    return out


@pytest.mark.slow
def test_end_to_end_search_and_final_training(tmp_path):
    faults = [{"kind": "nan", "param": "attention_keep", "below": 0.45, "epoch": 1},  # first match wins
              {"kind": "oom", "param": "token_keep", "below": 0.8, "epoch": 1}]
    fault = json.dumps(faults)
    start = time.time()
    # budget 10: with trials failing by design, enough others meet at the rung for MO-ASHA to stop one
    proc = subprocess.run(search_cmd(tmp_path, "--budget", "10", "--epochs", "3", "--grace-epochs", "1",
                                     "--baseline-seeds", "2", "--train-shorter", "1/3"),
                          capture_output=True, text=True, timeout=400, env=env(TRILEVEL_FAULT=fault))
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"search took {time.time() - start:.0f}s")
    run_dir = tmp_path / "runs" / "t"
    for name in ("trials.jsonl", "pareto.json", "best.yaml", "search.json", "pareto.png"):
        assert (run_dir / name).exists(), name
    recs = records(run_dir)
    assert len(recs) == 10
    statuses = [r["status"] for r in recs.values()]
    assert "stopped_early" in statuses and "completed" in statuses
    baseline = [r for r in recs.values() if r["is_baseline"]]
    assert len(baseline) == 1 and baseline[0]["speedup"] == pytest.approx(1.0)
    # where each trial came from: dense, the paper setting the space holds (tried right after), the sampler
    origins = sorted(r["origin"] for r in recs.values())
    assert origins == ["dense", "paper:tri-level-deit-t"] + ["sampler"] * 8
    for r in recs.values():  # speed measured in pairs inside every trial that finished
        if r["status"] == "completed":
            assert r["paired_speedup"] > 0 and r["speedup"] == r["paired_speedup"] and r["wall_speedup"] > 0
    for tid, r in recs.items():  # exactly the trials a fault applies to fail, each with its reason
        kind = next((f["kind"] for f in faults if r["params"].get(f["param"], 1.0) < f["below"]), None)
        assert (r["status"] == "failed") == (kind is not None), r
        if kind == "nan":
            assert "nan" in r["error"]
        elif kind == "oom":  # torch's real OutOfMemoryError, with the remedy first; shown in the report
            assert r["error"].startswith("torch.OutOfMemoryError: out of memory (batch size 32): reduce --batch-size")
            assert f"{tid}: torch.OutOfMemoryError: out of memory (batch size 32): reduce --batch-size" in proc.stdout
    assert any("out of memory" in (r["error"] or "") for r in recs.values())
    front = json.loads((run_dir / "pareto.json").read_text())
    assert front and all(r["status"] == "completed" for r in front)
    completed = [r for r in recs.values() if r["status"] == "completed"]
    points = [(r["val_acc"], r["speedup"]) for r in completed]
    on_front = {completed[i]["trial_id"] for i in pareto_indices(points, ("max", "max"))}
    assert {r["trial_id"] for r in front} <= on_front
    meta = json.loads((run_dir / "search.json").read_text())
    assert meta["status"] == "finished" and len(meta["baseline_accs"]) == 2
    pruned = {r["trial_id"] for r in front if not r["is_baseline"] and r["speedup"] > 1}
    assert len(meta["finalist_accs"]) == min(3, len(pruned)) and set(meta["finalist_accs"]) <= pruned
    assert "Pareto" in proc.stdout
    # best.yaml trains as is with trilevel-train
    best = RunConfig.load(run_dir / "best.yaml")
    assert best.model_kwargs["depth"] == 2
    train = subprocess.run([str(BIN / "trilevel-train"), "--config", str(run_dir / "best.yaml"), "--epochs", "1",
                            "--output", str(tmp_path / "final"), "--quiet"],
                           capture_output=True, text=True, timeout=200, env=env())
    assert train.returncode == 0, train.stderr
    assert json.loads((tmp_path / "final" / "metrics.json").read_text())["epochs"] == 1
    # the full-training command the report prints runs as printed (shortened here by later flags)
    printed = next(line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("trilevel-train"))
    argv = shlex.split(printed)
    shorter = json.loads((run_dir / "search.json").read_text())["train_shorter"]
    assert [r["epochs"] for r in shorter] == [1] and len(shorter[0]["accs"]) == 2  # 1 of 3 epochs, both dense seeds
    assert "Dense trained shorter" in proc.stdout
    instead = "Train dense shorter instead" in proc.stdout  # the pick may lose to dense at 1 epoch
    assert argv[argv.index("--recipe") + 1] == "deit" and ("--sparsity" in argv) != instead
    assert "--config" not in argv
    full = subprocess.run([str(BIN / argv[0]), *argv[1:], "--epochs", "1", "--train-subset", "64", "--val-subset", "32",
                           "--batch-size", "16", "--output", str(tmp_path / "full"), "--quiet"],
                          capture_output=True, text=True, timeout=200, env=env())
    assert full.returncode == 0, full.stderr
    m = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert m["config"]["recipe"] == "deit" and m["config"]["mixup"] == 0.8
    assert m["config"]["sparsity"] == best.sparsity.to_dict() and m["config"]["model_kwargs"] == best.model_kwargs


@pytest.mark.slow
def test_search_from_python_inside_the_callers_ray(tmp_path, monkeypatch):
    """The embeddable search: the caller's Ray (not started or shut down by the search), a sampler
    object and a space object instead of names, a typed result, no signal handler left behind."""
    import signal as _signal

    import ray
    import yaml

    from trilevel.search import SearchOptions, run_search
    from trilevel.search.ray_compat import quiet_env
    from trilevel.spaces import SearchSpace
    from optuna.distributions import FloatDistribution

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    quiet_env()
    run = RunConfig.from_dict({**yaml.safe_load(BASE), "epochs": 2})
    space = SearchSpace("tokens", {"token_keep": FloatDistribution(0.5, 1.0)}, {"schedule": "constant"})
    opts = SearchOptions(run=run, budget=3, space=space, sampler=optuna.samplers.RandomSampler(seed=3),
                         grace_epochs=1, baseline_seeds=1, finalists=0, output=str(tmp_path), name="py", live=False)
    lines = []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    handler = _signal.getsignal(_signal.SIGTERM)  # Ray's own, after ray.init
    try:
        result = run_search(opts, echo=lines.append)
        assert ray.is_initialized()  # the caller's Ray is left running
    finally:
        ray.shutdown()
    assert _signal.getsignal(_signal.SIGTERM) == handler
    assert opts.grace_epochs == 1 and opts.space is space  # options are not rewritten
    assert result.status == "finished" and result.run_dir == (tmp_path / "py").resolve()
    assert len(result.summary.run.trials) == 3 and result.front
    assert all(t.status == "completed" for t in result.front)
    meta = json.loads((result.run_dir / "search.json").read_text())
    assert meta["sampler"] == "RandomSampler" and meta["space"] == "tokens"
    if result.pick is not None:
        assert result.best_config.sparsity.token_keep == result.pick.config.token_keep


@pytest.mark.slow
def test_search_on_data_without_signal_stops_before_the_budget(tmp_path):
    """Random labels: dense cannot learn, so the search ranks and exports nothing (exit 4)."""
    proc = subprocess.run(search_cmd(tmp_path, "--dataset", "synthetic", "--train-subset", "256",
                                     "--val-subset", "200", "--budget", "6", "--epochs", "2",
                                     "--baseline-seeds", "3", "--concurrency", "2"),
                          capture_output=True, text=True, timeout=300, env=env())
    assert proc.returncode == 4, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "t"
    meta = json.loads((run_dir / "search.json").read_text())
    assert meta["status"] == "not_learned" and meta["validity"]["learned"] is False
    assert meta["validity"]["threshold"] == pytest.approx(meta["validity"]["chance"] + 0.10)
    assert not (run_dir / "best.yaml").exists() and not (run_dir / "trials.jsonl").exists()  # no budget spent
    assert "did not learn" in proc.stderr and "--epochs" in proc.stderr
    assert "Traceback" not in proc.stderr
    report = subprocess.run([str(BIN / "trilevel-report"), str(run_dir)], capture_output=True, text=True,
                            timeout=120, env=env())
    assert report.returncode == 4 and "did not learn" in report.stdout, report.stderr


@pytest.mark.slow
def test_interrupt_while_dense_trains_first_then_resume(tmp_path):
    """Ctrl-C/SIGTERM during the dense seeds: exit 130 with the resume hint, no partial seed kept."""
    cmd = search_cmd(tmp_path, "--budget", "3", "--epochs", "4", "--baseline-seeds", "3", "--finalists", "0",
                     "--objective", "flops")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    run_dir = tmp_path / "runs" / "t"
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "baseline-seeds").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "--resume" in err
    meta = json.loads((run_dir / "search.json").read_text())
    assert meta["status"] == "interrupted"
    assert len(meta.get("dense_seed_accs") or {}) < 2 or (run_dir / "trials.jsonl").exists()
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=400, env=env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    meta = json.loads((run_dir / "search.json").read_text())
    assert meta["status"] == "finished" and len(meta["baseline_accs"]) == 3
    assert meta["validity"]["learned"] and meta["resolution_pts"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("ray_state", ["kept", "damaged tuner", "unreadable experiment state",
                                       "damaged searcher state"])
def test_interrupt_and_resume_completes_budget(tmp_path, ray_state):
    """Damaged: Ray's experiment state cannot be read back (a crash mid-write, another version of
    Ray or of this package pickled it); the resume says so and continues from the records alone.
    Unreadable: a value in the experiment state names a module that no longer exists; Ray's own
    resume would log it and silently start afresh, dropping the cut-off trial. Damaged searcher
    state: a file only Ray's resume reads (search_gen_state), failing inside it: the same silent
    restart, caught from Ray's log record (search/ray_compat.py, 5.)."""
    cmd = search_cmd(tmp_path, "--budget", "5", "--epochs", "2", "--baseline-seeds", "1", "--concurrency", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    run_dir = tmp_path / "runs" / "t"
    deadline = time.time() + 240
    while time.time() < deadline:
        path = run_dir / "trials.jsonl"
        if path.exists() and sum(r["status"] != "running" for r in records(run_dir).values()) >= 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    before = {tid: r for tid, r in records(run_dir).items() if r["status"] != "running"}
    assert len(before) >= 2
    assert json.loads((run_dir / "search.json").read_text())["status"] == "interrupted"
    if ray_state == "damaged tuner":
        (run_dir / "tuner.pkl").write_bytes(b"not a pickle")
    if ray_state == "unreadable experiment state":
        state_file = sorted(run_dir.glob("experiment_state-*.json"))[-1]
        state = json.loads(state_file.read_text())
        missing = b"ctrilevel.no_such_module\nRunRecorder\n."  # a pickle of a class whose module is gone
        state["runner_data"]["_stopper"] = {"_type": "CLOUDPICKLE_FALLBACK", "value": missing.hex()}
        state_file.write_text(json.dumps(state))
    if ray_state == "damaged searcher state":
        sorted(run_dir.glob("search_gen_state-*.json"))[-1].write_bytes(b"not a pickle")

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=400, env=env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert ("cannot be resumed" in resumed.stdout) == (ray_state != "kept"), resumed.stdout[-2000:]
    after = records(run_dir)
    finished = [r for r in after.values() if r["status"] in ("completed", "stopped_early", "failed")]
    assert len(finished) == 5
    for tid, r in before.items():  # finished trials kept, not re-run
        assert after[tid]["status"] == r["status"] and after[tid]["history"] == r["history"]
    configs = [json.dumps(r["params"], sort_keys=True) for r in after.values()]
    assert len(configs) == len(set(configs))
    assert_study_matches_record(run_dir, after)


@pytest.mark.slow
def test_resume_from_the_records_alone_on_another_machine(tmp_path):
    """Only the records travel (no checkpoints, no Ray experiment state, another directory): the
    resume keeps every finished trial, trains the unfinished one again from its first epoch, and
    ends with the budget, each configuration once."""
    import shutil

    from trilevel.store.run_store import RECORD_FILES

    cmd = search_cmd(tmp_path, "--budget", "5", "--epochs", "3", "--baseline-seeds", "1", "--concurrency", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    run_dir = tmp_path / "runs" / "t"
    deadline = time.time() + 240
    while time.time() < deadline:
        if (run_dir / "trials.jsonl").exists():
            recs = records(run_dir).values()
            if sum(r["status"] != "running" for r in recs) >= 2 and any(
                    r["status"] == "running" and r["history"] for r in recs):
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    before = records(run_dir)
    unfinished = [r for r in before.values() if r["status"] == "running"]
    assert len(unfinished) == 1 and len(before) >= 3

    moved = tmp_path / "elsewhere" / "runs" / "t"
    moved.mkdir(parents=True)
    for name in RECORD_FILES:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, moved / name)
    shutil.rmtree(run_dir)
    cmd = [arg if arg != str(tmp_path / "runs") else str(tmp_path / "elsewhere" / "runs") for arg in cmd]
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=400, env=env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "records alone" in resumed.stdout + resumed.stderr
    after = records(moved)
    assert sum(r["status"] in ("completed", "stopped_early", "failed") for r in after.values()) == 5
    assert not any(r["status"] == "running" for r in after.values())
    for tid, r in before.items():
        if r["status"] != "running":  # finished trials kept as they were, not re-run
            assert after[tid]["status"] == r["status"] and after[tid]["history"] == r["history"]
    lost = unfinished[0]
    assert lost["trial_id"] not in after
    again = [r for r in after.values() if r["params"] == lost["params"]]
    assert len(again) == 1 and again[0]["history"][0]["epoch"] == 1  # trained again from its first epoch
    configs = [json.dumps(r["params"], sort_keys=True) for r in after.values()]
    assert len(configs) == len(set(configs))
    assert_study_matches_record(moved, after)
    state = json.loads((moved / "moasha_state.json").read_text())
    rung_ids = {tid for rung in state["moasha"]["rungs"] for tid, _ in rung["recorded"]}
    assert lost["trial_id"] not in rung_ids and rung_ids <= set(after)


def assert_study_matches_record(run_dir, recs):
    """The Optuna study in the run directory agrees with trials.jsonl: nothing left running, and
    every finished trial told with its outcome under its Ray trial id."""
    from trilevel.search.searcher import STUDY_FILE, journal_storage

    study = optuna.load_study(study_name=run_dir.name, storage=journal_storage(run_dir / STUDY_FILE))
    assert not study.get_trials(states=(TrialState.RUNNING,))
    by_id = {t.user_attrs.get("ray_trial_id"): t for t in study.trials}
    expected = {"completed": TrialState.COMPLETE, "stopped_early": TrialState.PRUNED, "failed": TrialState.FAIL}
    for tid, r in recs.items():
        assert by_id[tid].state == expected[r["status"]], (tid, r["status"], by_id[tid].state)
        if r["status"] == "completed":
            assert by_id[tid].values[0] == pytest.approx(r["val_acc"])


def test_search_bad_input_is_one_line(tmp_path):
    for args, pattern in [
        (["--budget", "0"], "--budget must be a positive"),
        (["--grace-epochs", "5", "--epochs", "3"], "cannot exceed"),
        (["--grace-epochs", "soon"], "expected a number of epochs or auto"),
        (["--finalists", "-1"], "--finalists must be >= 0"),
        (["--model", "resnet50"], "not a timm VisionTransformer"),
        (["--sampler", "tpee"], "did you mean 'tpe'"),
        (["--dataset", "cifar10"], "--data is required"),
        (["--resume", "--name", "nothing"], "nothing to resume"),
        (["--initial-checkpoint", "missing.pt"], f"initial checkpoint not found: {Path.cwd() / 'missing.pt'}"),
    ]:
        proc = subprocess.run(search_cmd(tmp_path, *args), capture_output=True, text=True, timeout=60, env=env())
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and pattern in lines[0], (args, proc.stderr)


def test_unreachable_address_fails_fast(tmp_path):
    start = time.time()
    proc = subprocess.run(search_cmd(tmp_path, "--address", "127.0.0.1:1"), capture_output=True, text=True,
                          timeout=60, env=env())
    assert proc.returncode == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in proc.stderr.strip().splitlines()[-1]
    assert time.time() - start < 30


def test_corrupt_trials_file_is_reported_not_used(tmp_path):
    from trilevel.store.run_store import load_records, read_trials

    good = json.dumps({"trial_id": "a", "status": "completed"})
    (tmp_path / "trials.jsonl").write_text(good + "\n{\"trial_id\": \"b\", \"sta\n" + good + "\n")
    with pytest.raises(UserError, match="line 2 is corrupt"):
        load_records(tmp_path)
    (tmp_path / "trials.jsonl").write_text(good + "\n{\"trial_id\": \"b\", \"sta")  # torn last line
    assert list(load_records(tmp_path)) == ["a"]
    records, warnings = read_trials(tmp_path)  # the one reader: the reports see the same, with a warning
    assert list(records) == ["a"] and "half-written last line 2" in warnings[0]


@pytest.mark.slow
def test_local_ray_listens_on_loopback_without_dashboard(tmp_path, monkeypatch):
    from trilevel.search.ray_compat import quiet_env
    from trilevel.search.cluster import init_ray
    from trilevel.search.options import SearchOptions

    quiet_env()
    import ray

    # Another cluster announced on the machine must not be joined by a local search.
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    init_ray(SearchOptions(run=RunConfig()))
    try:
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        assert ray._private.worker.global_worker.node.node_ip_address == "127.0.0.1"
        assert ray._private.worker.global_worker.node.address_info.get("webui_url") in (None, "")
    finally:
        ray.shutdown()


def test_resume_refuses_a_different_search(tmp_path):
    from trilevel.search import SearchOptions
    from trilevel.search.run_dir import prepare

    opts = SearchOptions(run=RunConfig(model="deit_t"), output=str(tmp_path), name="r")
    prepare(opts, load_space("tri-level"), 3, tmp_path / "r")
    other = SearchOptions(run=RunConfig(model="deit_s", dataset="synthetic"), output=str(tmp_path), name="r",
                          resume=True, space="pss")
    with pytest.raises(UserError, match="different search.*model 'deit_t' -> 'deit_s'.*dataset.*space"):
        prepare(other, load_space("pss"), 3, tmp_path / "r")
    with pytest.raises(UserError, match="already holds a search.*--resume"):
        prepare(opts, load_space("tri-level"), 3, tmp_path / "r")
    # trials on 2 workers keep their checkpoints in Ray Train runs, not in Tune's trial checkpoints
    wider = SearchOptions(run=RunConfig(model="deit_t"), output=str(tmp_path), name="r", resume=True,
                          workers_per_trial=2)
    with pytest.raises(UserError, match="different search.*workers_per_trial 1 -> 2"):
        prepare(wider, load_space("tri-level"), 3, tmp_path / "r")
    assert prepare(dataclasses.replace(wider, workers_per_trial=1), load_space("tri-level"), 3,
                   tmp_path / "r").workers_per_trial == 1
    # a search.json from before the field: the trials' own world size says what ran
    meta = json.loads((tmp_path / "r" / "search.json").read_text())
    del meta["workers_per_trial"]
    (tmp_path / "r" / "search.json").write_text(json.dumps(meta))
    (tmp_path / "r" / "trials.jsonl").write_text(json.dumps(
        {"trial_id": "a", "params": {}, "status": "completed", "world_size": 2}) + "\n")
    assert prepare(wider, load_space("tri-level"), 3, tmp_path / "r").workers_per_trial == 2


def test_gpu_and_unwritable_output_are_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (search_cmd(tmp_path, "--gpus-per-trial", "1"), "no CUDA GPU"),
        ([str(BIN / "trilevel-search"), "--output", str(blocker / "sub")], "cannot be written"),
        ([str(BIN / "trilevel-train"), "--device", "cuda", "--output", str(tmp_path / "o")], "no CUDA GPU"),
        ([str(BIN / "trilevel-train"), "--output", str(blocker / "sub")], "cannot be written"),
    ]
    for cmd, pattern in cases:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env())
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and pattern in lines[0], (cmd, proc.stderr)


@pytest.mark.slow
def test_resume_of_a_finished_search_adds_only_the_finalists_and_train_shorter(tmp_path):
    common = ("--budget", "3", "--epochs", "2", "--baseline-seeds", "2", "--objective", "flops", "--concurrency", "1")
    first = subprocess.run(search_cmd(tmp_path, *common, "--finalists", "0"),
                           capture_output=True, text=True, timeout=300, env=env())
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp_path / "runs" / "t"
    before = records(run_dir)
    assert json.loads((run_dir / "search.json").read_text())["finalist_accs"] == {}
    # a finished search keeps no training checkpoint (they serve only an unfinished one); resuming it still works
    assert not list(run_dir.glob("**/checkpoint_*")) and "of training checkpoints" in first.stdout
    # the fidelity check first judged too costly (skipped, with the reason), then run on the next resume
    skipped = subprocess.run(search_cmd(tmp_path, *common, "--finalists", "0", "--fidelity", "2",
                                        "--fidelity-max-share", "0.001", "--resume"),
                             capture_output=True, text=True, timeout=300, env=env())
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    check = json.loads((run_dir / "search.json").read_text())["fidelity"]
    assert check["runs"] == [] and check["epochs"] == 4
    no_pick = "no pick to check" in (check["skipped"] or "")
    assert no_pick or "--fidelity-max-share" in check["skipped"], check
    again = subprocess.run(search_cmd(tmp_path, *common, "--finalists", "1", "--train-shorter", "1/2", "--resume",
                                      "--fidelity", "2", "--fidelity-max-share", "10"),
                           capture_output=True, text=True, timeout=300, env=env())
    assert again.returncode == 0, again.stderr[-3000:]
    check = json.loads((run_dir / "search.json").read_text())["fidelity"]
    pick = json.loads((run_dir / "best.json").read_text()) if (run_dir / "best.json").exists() else None
    if "no pick to check" in (check["skipped"] or ""):
        assert check["runs"] == [] and "skipped: no pick to check" in again.stdout
    else:  # dense and the finalist, 4 epochs (2 x 2) on the search's seed
        base_id = next(r["trial_id"] for r in records(run_dir).values() if r["is_baseline"])
        ids = {r["trial_id"] for r in check["runs"]}
        finalists = set(json.loads((run_dir / "search.json").read_text())["finalist_accs"])
        assert check["skipped"] is None and pick is not None  # the pick is the finalist, or (knee) a third run
        assert base_id in ids and finalists <= ids and len(ids) == len(check["runs"]) in (2, 3)
        assert "Fidelity check: 4 epochs (2x the search's 2), seed 0" in again.stdout and "Rank correlation" in again.stdout
    assert "Search cost" in again.stdout
    meta = json.loads((run_dir / "search.json").read_text())
    assert records(run_dir) == before  # no trial re-run or added
    assert len(meta["baseline_accs"]) == 2 and meta["status"] == "finished"
    front = json.loads((run_dir / "pareto.json").read_text())
    pruned = {r["trial_id"] for r in front if not r["is_baseline"] and r["flops_speedup"] > 1}
    assert len(meta["finalist_accs"]) == 1 and set(meta["finalist_accs"]) <= pruned
    assert "Finalists re-trained" in again.stdout
    assert [(r["epochs"], len(r["accs"])) for r in meta["train_shorter"]] == [(1, 2)]  # the missing phase, added


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["nsga2", "gp"])
def test_flops_objective_with_other_samplers(tmp_path, sampler):
    proc = subprocess.run(search_cmd(tmp_path, "--budget", "4", "--epochs", "2", "--baseline-seeds", "2",
                                     "--finalists", "2", "--objective", "flops", "--sampler", sampler,
                                     "--space", "full", "--papers", "off"),  # all 4 trials sampled
                          capture_output=True, text=True, timeout=300, env=env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "t"
    recs = records(run_dir)
    assert len(recs) == 4
    assert all(r["flops_speedup"] > 0 for r in recs.values() if r["status"] != "failed")
    meta = json.loads((run_dir / "search.json").read_text())
    assert meta["objective"] == "flops"
    # finalists: up to 2 pruned front configurations, each re-trained on the one extra dense seed
    front = json.loads((run_dir / "pareto.json").read_text())
    pruned = {r["trial_id"] for r in front if not r["is_baseline"] and r["flops_speedup"] > 1}
    assert pruned  # FLOPs are deterministic: the fastest pruned configuration is on the front
    assert len(meta["finalist_accs"]) == min(2, len(pruned)) and set(meta["finalist_accs"]) <= pruned
    assert all(len(accs) == 1 and 0 <= accs[0] <= 1 for accs in meta["finalist_accs"].values())
    assert "Finalists re-trained on the dense baseline's seeds (2 seeds each)" in proc.stdout
