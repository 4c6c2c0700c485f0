"""`--storage URI` against a real S3-compatible server on loopback (moto's server, a dev dependency):
Ray Tune's experiment and the run's records go there, an unreachable or wrong storage is refused in
one line, a storage that stops answering costs no record, and a search interrupted on one machine
continues on another from what is stored."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_search import env, records, search_cmd

from trilevel.core.errors import UserError
from trilevel.store.run_store import RECORD_FILES

pytest.importorskip("moto")
BIN = Path(sys.executable).parent
BUCKET = "trl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


@pytest.fixture
def s3(monkeypatch):
    """An S3 endpoint on loopback with one bucket; the standard AWS variables point at it (for this
    process, and for the commands the tests start through `env()`)."""
    port = _free_port()
    server = _start_server(port)
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)

    class Endpoint:
        def __init__(self):
            self.server = server

        def stop(self):
            self.server.terminate()
            self.server.wait(timeout=10)

        def keys(self, prefix=""):
            listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
            return [o["Key"] for o in listed.get("Contents", []) if not o["Key"].endswith("/")]  # no folder markers

    endpoint = Endpoint()
    try:
        yield endpoint
    finally:
        endpoint.server.kill()
        endpoint.server.wait(timeout=10)


def _start_search(cmd, run_dir: Path, finished: int):
    """Start the search and return once `finished` trials have finished (or after 5 minutes)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.time() + 300
    while time.time() < deadline:
        if (run_dir / "trials.jsonl").exists() and sum(
                r["status"] != "running" for r in records(run_dir).values()) >= finished:
            return proc, run_dir
        time.sleep(0.3)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"{finished} trials did not finish within 5 minutes: {err[-2000:]}")


def test_records_go_there_and_come_back(s3, tmp_path):
    from trilevel.search.storage import Storage

    run_dir = tmp_path / "t"
    run_dir.mkdir()
    (run_dir / "search.json").write_text('{"name": "t"}')
    (run_dir / "trials.jsonl").write_text('{"trial_id": "a"}\n')
    (run_dir / "scratch.txt").write_text("not a record")
    storage = Storage(f"s3://{BUCKET}/runs", "t")
    storage.check()
    assert storage.push(run_dir)
    assert sorted(s3.keys("runs/t/records/")) == ["runs/t/records/search.json", "runs/t/records/trials.jsonl"]
    other = tmp_path / "elsewhere" / "t"
    assert storage.pull(other) == ["search.json", "trials.jsonl"]
    assert (other / "trials.jsonl").read_text() == '{"trial_id": "a"}\n'
    with pytest.raises(UserError, match="holds no search"):
        Storage(f"s3://{BUCKET}/runs", "nothing").pull(tmp_path / "n")
    import boto3

    boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/t/run_trial_1/checkpoint_000001/model.pt", Body=b"12345")
    assert storage.drop_checkpoints() == 5
    assert not [k for k in s3.keys("runs/t/") if "checkpoint_" in k]
    # a storage that stops answering: one line, False, and the next copy after it is back says so
    said = []
    s3.stop()
    assert storage.push(run_dir) is False  # silent (the recorder's): leaves the line to the next caller
    assert storage.push(run_dir, said.append) is False and storage.push(run_dir, said.append) is False
    assert len(said) == 1 and "does not answer" in said[0] and str(run_dir) in said[0]
    assert storage.drop_checkpoints() == 0  # at the end of a finished search: nothing freed, no traceback


def test_a_resume_that_would_overwrite_newer_stored_records_is_refused(s3, tmp_path):
    """Another driver went on from the storage: this run directory's older records must not be
    resumed (their copies would overwrite the newer ones)."""
    from test_reports import trial

    from trilevel.search.storage import Storage

    here, newer = tmp_path / "here", tmp_path / "newer"
    for folder, ids in ((here, ["a"]), (newer, ["a", "b"])):
        folder.mkdir()
        (folder / "trials.jsonl").write_text("".join(json.dumps(trial(t, acc=0.5, speedup=1.0)) + "\n" for t in ids))
        (folder / "search.json").write_text("{}")
    storage = Storage(f"s3://{BUCKET}/runs", "t")
    assert storage.ahead_of(here) == 0  # nothing stored yet
    storage.push(newer)
    assert storage.ahead_of(here) == 1 and storage.ahead_of(newer) == 0


def test_bad_storage_is_refused_in_one_line(s3, tmp_path):
    from trilevel.search.storage import Storage, require_shared_storage

    with pytest.raises(UserError, match="unsupported scheme 'ftp'"):
        Storage("ftp://host/x", "t")
    with pytest.raises(UserError, match="cannot use --storage s3://no-such-bucket"):
        Storage("s3://no-such-bucket/x", "t").check()
    local = Storage(str(tmp_path / "shared"), "t")  # a path every node mounts
    local.check()
    assert local.tune_root == str((tmp_path / "shared" / "t").resolve())
    nodes = [{"NodeManagerAddress": "10.0.0.1", "Alive": True}, {"NodeManagerAddress": "10.0.0.2", "Alive": True}]
    with pytest.raises(UserError, match="spans 2 machines.*--storage s3://"):
        require_shared_storage(nodes, None)
    require_shared_storage(nodes, "s3://b/x")
    require_shared_storage(nodes[:1] + [{"NodeManagerAddress": "10.0.0.1", "Alive": True}], None)  # one machine
    require_shared_storage(nodes[:1] + [{"NodeManagerAddress": "10.0.0.2", "Alive": False}], None)  # one alive
    proc = subprocess.run(search_cmd(tmp_path, "--storage", "s3://no-such-bucket/x"), capture_output=True,
                          text=True, timeout=120, env=env())
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "cannot use --storage s3://no-such-bucket" in lines[0], \
        proc.stderr


@pytest.mark.slow
def test_a_search_interrupted_on_one_machine_continues_on_another_from_the_storage(s3, tmp_path):
    """Ray Tune's trials and side phases keep their experiments in the bucket, the records follow;
    after SIGTERM the run directory is deleted (the machine is gone), and `--resume --storage` in
    another output directory copies the records back, keeps every finished trial and ends with the
    budget."""
    uri = f"s3://{BUCKET}/runs"
    cmd = search_cmd(tmp_path, "--budget", "4", "--epochs", "2", "--baseline-seeds", "2", "--finalists", "0",
                     "--concurrency", "1", "--storage", uri)
    proc, run_dir = _start_search(cmd, tmp_path / "runs" / "t", finished=2)
    time.sleep(1.0)  # the recorder copies a finished trial's record right after writing it
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    keys = s3.keys("runs/t/")
    assert "runs/t/records/search.json" in keys and "runs/t/records/trials.jsonl" in keys
    assert any(k.startswith("runs/t/baseline-seeds/") for k in keys)  # the side phase's experiment
    assert any(k.startswith("runs/t/experiment_state") or "/run_trial_" in k or k.startswith("runs/t/run_trial")
               for k in keys), keys  # the trials' experiment
    before = {tid: r for tid, r in records(run_dir).items() if r["status"] != "running"}
    assert len(before) >= 2
    shutil.rmtree(tmp_path / "runs")  # the first machine is gone

    elsewhere = str(tmp_path / "elsewhere")
    again = [arg if arg != str(tmp_path / "runs") else elsewhere for arg in cmd] + ["--resume"]
    resumed = subprocess.run(again, capture_output=True, text=True, timeout=600, env=env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {uri}/t/records" in resumed.stdout
    moved = Path(elsewhere) / "t"
    after = records(moved)
    assert sum(r["status"] in ("completed", "stopped_early", "failed") for r in after.values()) == 4
    for tid, r in before.items():  # finished trials kept as they were, not re-run
        assert after[tid]["status"] == r["status"] and after[tid]["history"] == r["history"]
    import boto3

    stored = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key="runs/t/records/search.json")["Body"].read())
    assert stored["status"] == "finished"
    assert {n for n in RECORD_FILES if (moved / n).exists()} <= {k.rsplit("/", 1)[1] for k in s3.keys("runs/t/records/")}
    assert not [k for k in s3.keys("runs/t/") if "/checkpoint_" in k]  # a finished search's are removed


@pytest.mark.slow
def test_trials_on_two_workers_keep_their_train_runs_in_the_storage(s3, tmp_path):
    """--workers-per-trial with --storage: each trial's Ray Train run (its checkpoints) lives in the
    bucket beside Tune's experiments, where a retry on another machine finds it."""
    cmd = search_cmd(tmp_path, "--budget", "1", "--epochs", "2", "--baseline-seeds", "1", "--finalists", "0",
                     "--papers", "off", "--workers-per-trial", "2", "--keep-checkpoints",
                     "--storage", f"s3://{BUCKET}/runs")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    [trial] = records(tmp_path / "runs" / "t").values()
    assert trial["status"] == "completed" and trial["world_size"] == 2
    train = [k for k in s3.keys("runs/t/train/") if "/checkpoint_" in k]
    assert train and all(k.startswith(f"runs/t/train/t-{trial['trial_id']}/") for k in train), train
    assert not [p for p in (tmp_path / "runs" / "t").glob("train/**/checkpoint_*")]  # not on the local disk


@pytest.mark.slow
def test_a_storage_that_stops_answering_stops_the_search_and_the_resume_finishes_it(s3, tmp_path):
    """The server goes away mid-search: one line says so, exit 130 as for Ctrl-C, no finished trial
    lost and none recorded as failed for it; once the server is back, --resume ends with the budget."""
    cmd = search_cmd(tmp_path, "--budget", "5", "--epochs", "2", "--baseline-seeds", "1", "--finalists", "0",
                     "--concurrency", "1", "--storage", f"s3://{BUCKET}/runs")
    proc, run_dir = _start_search(cmd, tmp_path / "runs" / "t", finished=2)
    port = int(os.environ["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    s3.stop()
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "--resume" in err
    assert sum("stopped answering" in line for line in out.splitlines()) == 1, out[-3000:]
    assert "does not answer" not in out
    before = records(run_dir)
    done = {tid: r for tid, r in before.items() if r["status"] != "running"}
    assert len(done) >= 2 and not any(r["status"] == "failed" for r in before.values())

    s3.server = _start_server(port)  # back, empty: the run directory holds every record
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600, env=env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = records(run_dir)
    assert sum(r["status"] in ("completed", "stopped_early", "failed") for r in after.values()) == 5
    for tid, r in done.items():  # finished trials kept as they were, not re-run
        assert after[tid]["status"] == r["status"] and after[tid]["history"] == r["history"]
    assert "runs/t/records/trials.jsonl" in s3.keys("runs/t/records/")


def test_one_driver_per_stored_run_across_machines(s3, tmp_path):
    """The lease in the storage: a second driver (another machine: another token) is refused in one
    line naming the holder; the heartbeat renews it; a lease left by a driver that stopped renewing it
    is taken over with a note; release removes it. The command refuses before Ray starts."""
    import boto3

    from trilevel.search.storage import Storage, StorageLease

    storage = Storage(f"s3://{BUCKET}/runs", "t")
    first = StorageLease(storage, renew_seconds=0.2, settle_seconds=0.1)
    first.acquire()
    try:
        stored = first.read()
        assert stored["token"] == first.token and stored["pid"] == os.getpid()
        time.sleep(2.0)
        assert first.read()["heartbeat"] > stored["heartbeat"]  # renewed
        with pytest.raises(UserError, match=r"in use by another trilevel-search \(pid \d+ on .*renewed \d+ s ago"):
            StorageLease(Storage(f"s3://{BUCKET}/runs", "t"), settle_seconds=0.1).acquire()
        proc = subprocess.run(search_cmd(tmp_path, "--storage", f"s3://{BUCKET}/runs"), capture_output=True,
                              text=True, timeout=120, env=env())
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "in use by another trilevel-search" in lines[0], proc.stderr
        assert not (tmp_path / "runs" / "t" / "search.json").exists()  # refused before anything started
    finally:
        first.release()
    assert "runs/t/driver.lease" not in s3.keys("runs/t/")
    # a new search (no --resume) under a name the storage already holds is refused too
    boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/t/records/search.json", Body=b"{}")
    proc = subprocess.run(search_cmd(tmp_path, "--storage", f"s3://{BUCKET}/runs"), capture_output=True,
                          text=True, timeout=120, env=env())
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "already holds a search" in lines[0], proc.stderr
    # a driver that died (kill -9, or lost the storage): its heartbeat goes stale and is taken over
    boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/t/driver.lease", Body=json.dumps(
        {"host": "gone-host", "pid": 4242, "started": "2026-12-03T10:00:00+0000", "token": "old",
         "heartbeat": time.time() - 600}).encode())
    said = []
    second = StorageLease(storage, settle_seconds=0.1)
    second.acquire(said.append)
    try:
        assert len(said) == 1 and "stopped renewing" in said[0] and "pid 4242 on gone-host" in said[0]
        assert second.read()["token"] == second.token
    finally:
        second.release()
    # a driver of this machine whose process is gone (kill -9): taken over at once, fresh heartbeat or not
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/t/driver.lease", Body=json.dumps(
        {"host": socket.gethostname(), "pid": dead.pid, "started": "2026-12-03T10:00:00+0000", "token": "killed",
         "heartbeat": time.time()}).encode())
    said = []
    third = StorageLease(storage, settle_seconds=0.1)
    third.acquire(said.append)
    third.release()
    assert len(said) == 1 and f"pid {dead.pid}" in said[0]
    # taken over while this driver ran (it could not renew in time): it stops renewing, never overwrites
    fourth = StorageLease(storage, renew_seconds=0.2, settle_seconds=0.1)
    fourth.acquire()
    boto3.client("s3").put_object(Bucket=BUCKET, Key="runs/t/driver.lease", Body=json.dumps(
        {"host": "other-host", "pid": 7, "started": "2026-12-03T10:00:00+0000", "token": "usurper",
         "heartbeat": time.time()}).encode())
    time.sleep(1.5)
    fourth.release()
    assert fourth.lost is not None and fourth.lost["token"] == "usurper"
    assert fourth.read()["token"] == "usurper"  # neither renewed over nor deleted by the old holder
