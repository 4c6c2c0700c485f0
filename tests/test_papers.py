"""The papers' settings: expressible in the spaces, enqueued right after dense with their origin,
protected from early stopping, and compared with the pick in the report."""

from types import SimpleNamespace

import pytest
from optuna.distributions import FloatDistribution

from trilevel.reports import load_run, summarize
from trilevel.search.moasha import MOASHAScheduler
from trilevel.search.recorder import RunRecorder
from trilevel.search.searcher import StudySearcher
from trilevel.spaces import SNAP, SearchSpace, load_space
from trilevel.spaces.papers import PAPERS

from test_reports import make_run, report_text, trial


@pytest.mark.parametrize("space, names", [
    ("tri-level", ["tri-level-deit-t"]),
    ("pss", ["pss-cyclic"]),
    ("full", ["tri-level-deit-t", "evit-0.7", "infobatch-0.5"]),
])
def test_each_space_expresses_its_papers_exactly(space, names):
    space = load_space(space)
    points = space.paper_points()
    assert [name for name, _ in points] == names
    by_name = {p.name: p for p in PAPERS}
    for name, point in points:
        assert space.to_sparsity(point) == by_name[name].config()  # exactly the paper's configuration


def test_a_space_whose_range_excludes_a_paper_does_not_enqueue_it():
    narrow = SearchSpace("narrow", {"example_keep": FloatDistribution(0.5, 1.0), "token_keep": FloatDistribution(0.5, 1.0),
                                    "attention_keep": FloatDistribution(0.3, 1.0)},
                         {"example_criterion": "forgetting", "token_mode": "attentive", "schedule": "warmup_cosine"})
    assert narrow.paper_points() == []  # Tri-Level's attention keep 0.1 is below the floor
    fixed_other = SearchSpace("other", {"token_keep": FloatDistribution(0.5, 1.0)}, {"schedule": "constant"})
    assert fixed_other.paper_points() == []  # EViT warms up and decays; a constant schedule is not it


def test_values_next_to_an_edge_snap_to_it():
    space = load_space("tri-level")
    snapped = space.snap({"example_keep": 1.0 - SNAP / 2, "token_keep": 0.5 + SNAP / 2, "attention_keep": 0.5})
    assert snapped == {"example_keep": 1.0, "token_keep": 0.5, "attention_keep": 0.5}
    assert space.snap({"example_keep": 1.0 - 2 * SNAP})["example_keep"] == 1.0 - 2 * SNAP


def test_the_searcher_proposes_dense_then_the_papers_then_snapped_samples(tmp_path):
    space = load_space("full")
    papers = dict(space.paper_points())
    dense = space.dense_point()
    searcher = StudySearcher(space=dict(space.params), metric=["val_acc", "paired_cost"], mode=["max", "min"],
                             sampler="random", seed=0, points_to_evaluate=[dense, *papers.values()],
                             max_epochs=3, snap=space.snap)
    proposed = [searcher.suggest(f"t{i}") for i in range(1 + len(papers) + 20)]
    assert proposed[0] == dense and proposed[1:1 + len(papers)] == list(papers.values())
    for params in proposed[1 + len(papers):]:
        assert params == space.snap(params)


def test_the_recorder_says_where_each_trial_came_from(tmp_path):
    space = load_space("tri-level")
    papers = dict(space.paper_points())
    recorder = RunRecorder(tmp_path, 3, space.fixed, space.dense_point(), papers)
    points = {"dense": space.dense_point(), "paper": papers["tri-level-deit-t"],
              "sampled": {"example_keep": 0.7, "token_keep": 0.6, "attention_keep": 0.5}}
    for trial_id, params in points.items():
        recorder.on_trial_start(0, [], SimpleNamespace(trial_id=trial_id, config=params))
    origins = {tid: r.origin for tid, r in recorder.records.items()}
    assert origins == {"dense": "dense", "paper": "paper:tri-level-deit-t", "sampled": "sampler"}
    assert recorder.records["paper"].paper == "tri-level-deit-t" and recorder.records["sampled"].paper is None


def test_moasha_never_stops_a_protected_paper_point():
    dense, paper = {"x": 1.0}, {"x": 0.5}
    scheduler = MOASHAScheduler({"val_acc": "max", "paired_cost": "min"}, max_t=3, grace_period=1,
                                reduction_factor=2, time_attr="epoch", protected_config=[dense, paper])
    decisions = []
    for i, (config, acc) in enumerate([({"x": 0.9}, 0.9), ({"x": 0.8}, 0.8), (paper, 0.1), ({"x": 0.7}, 0.7)]):
        t = SimpleNamespace(trial_id=f"t{i}", config=config)
        decisions.append(scheduler.on_trial_result(None, t, {"epoch": 1, "val_acc": acc, "paired_cost": 1.0}))
    assert decisions[2] == "CONTINUE"  # the worst at the rung, and still run to the end
    assert "STOP" in decisions  # the rung does stop sampled trials


# -- the report ---------------------------------------------------------------------------------------
def _run(tmp_path, paper_accs, paper_speed):
    trials = [
        trial("base", acc=0.80, speedup=1.0, baseline=True),
        trial("a", acc=0.80, speedup=2.0, ex=0.7, tok=0.7),
        {**trial("p", acc=paper_accs[0], speedup=paper_speed, ex=0.8, tok=0.9, att=0.1), "origin": "paper:tri-level-deit-t"},
    ]
    return make_run(tmp_path / "run", trials=trials, finalist_accs={"a": [0.81, 0.79], "p": list(paper_accs[1:])})


@pytest.mark.parametrize("paper_accs, paper_speed, verdict", [
    ((0.79, 0.80, 0.78), 1.2, "beats"),  # the pick is faster and no worse
    ((0.95, 0.96, 0.94), 1.2, "trade-off"),  # the pick is faster, the paper far more accurate
    ((0.79, 0.81, 0.77), 1.2, "within noise"),  # pick - paper: +1, 0, +2 pts: [-0.7, +2.7] at 90%
])
def test_the_report_compares_the_pick_with_each_paper(tmp_path, paper_accs, paper_speed, verdict):
    summary = summarize(load_run(_run(tmp_path, paper_accs, paper_speed)))
    assert summary.best.trial_id == "a"
    (comparison,) = summary.papers
    assert comparison.name == "tri-level-deit-t" and comparison.delta.pairs == 3
    assert comparison.verdict == verdict, comparison.why
    text = report_text(summary)
    assert "The papers' settings, tried first" in text and f"{verdict}:" in text
    if verdict == "trade-off":  # on the front: marked there too
        assert "paper: tri-level-deit-t" in text


def test_a_paper_setting_faster_and_as_accurate_is_the_pick(tmp_path):
    summary = summarize(load_run(_run(tmp_path, (0.80, 0.81, 0.79), 2.5)))
    assert summary.best.trial_id == "p" and summary.papers[0].verdict == "is the pick"


def test_a_paper_trial_that_failed_is_not_compared(tmp_path):
    trials = [trial("base", acc=0.80, speedup=1.0, baseline=True), trial("a", acc=0.80, speedup=2.0, ex=0.7),
              {**trial("p", status="failed", epochs=1, tok=0.9, att=0.1, error="RuntimeError: x"), "origin": "paper:evit-0.7"}]
    summary = summarize(load_run(make_run(tmp_path / "run", trials=trials)))
    assert [(c.name, c.verdict) for c in summary.papers] == [("evit-0.7", "not compared")]
