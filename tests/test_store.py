"""The run store's records: declared once (store/codec.py), validated field by field when read."""

import json

import pytest

from trilevel.core import RunConfig, SparsityConfig, UserError
from trilevel.store.codec import decode, encode
from trilevel.store.run_store import (
    CurvePoint, EpochsAuto, FidelityCheck, FidelityRun, ProxyClimb, SearchInfo, SearchStatus, ShorterRun,
    TrialRecord, TrialStatus, read_search, write_search,
)


def full_search_info() -> SearchInfo:
    return SearchInfo(
        name="r", model="deit_t", dataset="digits", space="tri-level", objective="time", sampler="tpe", budget=40,
        epochs=9, grace_epochs=3, reduction_factor=3, max_acc_drop=0.5, seed=0, command="trilevel-search",
        started="2026-12-03T10:00:00", finished=None, wall_seconds=12.5, status=SearchStatus.INTERRUPTED,
        run_config=RunConfig(epochs=9), baseline_accs=[0.9, 0.91], varied=["example_keep"],
        finalist_accs={"t1": [0.89, 0.9]}, validity={"learned": True, "threshold": 0.2}, resolution_pts=1.5,
        num_train=1617, num_val=180, finalist_deltas={"t1": {"delta_pts": -0.5, "delta_ci_pts": [-2.0, 1.0]}},
        space_spec={"params": {}}, finalists=3, dense_seed_accs={"1": 0.91}, chance_acc=0.1,
        train_shorter=[ShorterRun(3, 10.0, [0.8, 0.82])],
        fidelity=FidelityCheck(2.0, 18, 0, [FidelityRun("t1", 0.9, 0.93, 40.0)]),
        papers={"tri-level-deit-t": {"example_keep": 0.8}},
        epochs_auto=EpochsAuto(30, 0, [CurvePoint(3, 0.7, 5.0), CurvePoint(6, 0.8, 10.0)], chosen=6, noise_pts=1.0),
        proxy_still_learning=ProxyClimb(9, 3, 2.5, 1.5, True),
    )


def test_every_record_round_trips_through_its_file(tmp_path):
    info = full_search_info()
    write_search(tmp_path, info)
    back = read_search(tmp_path)
    assert back == info
    assert back.status is SearchStatus.INTERRUPTED and isinstance(back.fidelity.runs[0], FidelityRun)
    stored = json.loads((tmp_path / "search.json").read_text())
    assert stored["epochs_auto"]["seconds"] == 15.0  # the curve's cost, written for readers of the file
    assert stored["status"] == "interrupted" and stored["run_config"]["epochs"] == 9
    record = TrialRecord("t1", TrialStatus.COMPLETED, {"example_keep": 0.7}, SparsityConfig(example_keep=0.7),
                         epochs=9, val_acc=0.9, history=[{"epoch": 1, "val_acc": 0.5}], retry_errors=["x"],
                         world_size=2, seed_accs=[0.9])
    data = json.loads(json.dumps(record.to_dict()))
    assert "seed_accs" not in data  # held in search.json, not in trials.jsonl
    again = TrialRecord.from_dict(data)
    assert again == TrialRecord(**{**record.__dict__, "seed_accs": []})


def test_an_older_file_takes_the_defaults_and_a_newer_one_its_extra_keys_are_ignored():
    record = TrialRecord.from_dict({"trial_id": "a", "status": "running", "added_later": {"x": 1}})
    assert record.world_size == 1 and record.retries == 0 and record.history == [] and record.val_acc is None
    fidelity = FidelityCheck.from_dict({"factor": 2, "epochs": 18})
    assert fidelity.seed == 0 and fidelity.runs == [] and fidelity.skipped is None


@pytest.mark.parametrize("field, value, message", [
    ("val_acc", "high", "trial record val_acc must be a number, got 'high'"),
    ("epochs", "nine", "trial record epochs must be an integer, got 'nine'"),
    ("history", {"epoch": 1}, "trial record history must be a list"),
    ("params", [0.5], "trial record params must be a mapping"),
    ("val_acc", 1.5, "val_acc must be a fraction in \\[0, 1\\], got 1.5"),
])
def test_a_trial_field_of_the_wrong_type_is_named(field, value, message):
    with pytest.raises(UserError, match=message):
        TrialRecord.from_dict({"trial_id": "a", "status": "completed", field: value})


def test_a_search_field_of_the_wrong_type_is_named_with_the_file(tmp_path):
    data = full_search_info().to_dict()
    data["fidelity"]["runs"][0]["acc"] = "n/a"
    (tmp_path / "search.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"search\.json: fidelity run acc must be a number, got 'n/a'"):
        read_search(tmp_path)
    data = full_search_info().to_dict()
    data["status"] = "paused"
    (tmp_path / "search.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="search status must be one of running, finished, interrupted"):
        read_search(tmp_path)
    del data["fidelity"]["epochs"]
    data["status"] = "running"
    (tmp_path / "search.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="fidelity has no 'epochs'"):
        read_search(tmp_path)


def test_the_codec_reads_what_it_writes_for_a_plain_record():
    point = CurvePoint(3, 0.5, 1.0)
    assert decode(CurvePoint, encode(point), "point") == point
    with pytest.raises(UserError, match="point must be an object"):
        decode(CurvePoint, [3, 0.5, 1.0], "point")
    with pytest.raises(UserError, match="point epochs must be an integer, got True"):
        decode(CurvePoint, {"epochs": True, "acc": 0.5, "seconds": 1.0}, "point")


def test_a_stored_null_stays_unknown_and_a_missing_key_takes_the_default():
    stored_null = TrialRecord.from_dict({"trial_id": "a", "status": "running", "train_seconds": None})
    missing = TrialRecord.from_dict({"trial_id": "a", "status": "running"})
    assert stored_null.train_seconds is None and missing.train_seconds == 0.0


def test_pickles_from_before_the_run_store_moved_load_while_a_resume_reads_them():
    """Ray's experiment state holds the recorder's records pickled under the module path of the
    version that wrote it (trilevel.core.run_store until the twelfth session)."""
    import pickle
    import sys

    from trilevel.search.old_names import earlier_module_names
    from trilevel.store.run_store import TrialStatus

    # pickle.dumps(TrialStatus.COMPLETED) as the version before the move wrote it
    old = b"\x80\x04\x8c\x17trilevel.core.run_store\x94\x8c\x0bTrialStatus\x94\x93\x94\x8c\x09completed\x94\x85\x94R\x94."
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(old)
    with earlier_module_names():
        assert pickle.loads(old) is TrialStatus.COMPLETED
    assert "trilevel.core.run_store" not in sys.modules  # the old path is gone again afterwards
