"""One driver per run directory (search/lock.py)."""

import json
import os

import pytest

from trilevel.core import UserError
from trilevel.store.run_store import LOCK_FILE
from trilevel.search.lock import RunLock


def test_a_second_driver_is_refused_with_the_holder_named(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"]
    with pytest.raises(UserError, match=rf"in use by another trilevel-search \(pid {os.getpid()} on "):
        second.acquire()
    assert not second.held
    first.release()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: nobody holds the run
    second.acquire()
    assert second.held
    second.release()


def test_a_lock_left_by_a_dead_driver_is_taken_over_with_a_note(tmp_path):
    # What a driver killed with -9 leaves: its details in the file, the kernel's lock gone with it.
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": "node-7", "pid": 4242, "started": "2026-12-03T10:00:00"}))
    notes = []
    lock = RunLock(tmp_path)
    lock.acquire(notes.append)
    assert lock.held and json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert notes == ["Took over the run from a driver that stopped without releasing it "
                     "(pid 4242 on node-7, since 2026-12-03T10:00:00)."]


def test_a_garbled_lock_file_does_not_stop_the_driver(tmp_path):
    (tmp_path / LOCK_FILE).write_text("{not json")
    with RunLock(tmp_path) as lock:
        assert lock.held
