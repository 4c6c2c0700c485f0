"""`--storage URI`: where Ray Tune keeps trial checkpoints and experiment state when the cluster's
machines share no disk, and where the run's records are mirrored so that another driver machine can
resume the search.

The URI is `s3://bucket/prefix`, `gs://bucket/prefix`, or a path every node mounts (NFS). Files go
through pyarrow's filesystems, the same layer Ray Tune's own storage uses, so the endpoint and the
credentials come from the standard environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`; `GOOGLE_APPLICATION_CREDENTIALS`) on the driver and,
through Ray, on every worker.

Layout under `URI/<run name>/`: Ray Tune's experiment of the trials (its state and one folder per
trial, with its checkpoints), one experiment per side phase (`baseline-seeds/`, `train-shorter/`,
...), and `records/`: copies of the run directory's record files (`RECORD_FILES`: search.json,
trials.jsonl, the Optuna journal, the MO-ASHA state, the exports). The run directory on the driver
stays where the records are written first; the copy follows at every phase's end and every trial's
end. A storage that stops answering costs no record: the run directory keeps them, one line says
so, and the next copy catches up.

A resume with `--storage` continues from the records (search/searcher.py `requeue_unfinished`): a
trial that was running trains again from its first epoch. Ray's experiment state in the storage is
not restored: it names the first driver's paths, and after an outage it holds as failed the trials
the outage cut off.

Written by hand: Ray Tune stores its own experiment, but nothing mirrors a driver's files.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from trilevel.core.errors import UserError
from trilevel.store.run_store import RECORD_FILES, SEARCH_FILE

from .lock import describe_holder as _describe

RECORDS = "records"  # the folder, under URI/<run name>, holding the copied record files
LEASE_FILE = "driver.lease"  # the driver's lease, under URI/<run name> (StorageLease)
LEASE_RENEW, LEASE_STALE = 30.0, 120.0  # seconds between heartbeats; a lease this old is abandoned
SCHEMES = ("s3", "gs", "gcs", "file")


def normalize(uri: str) -> str:
    """A URI as Ray Tune and pyarrow take it: schemes kept, a plain path made absolute."""
    uri = uri.strip()
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower()
        if scheme not in SCHEMES:
            raise UserError(f"--storage {uri!r}: unsupported scheme {scheme!r} (use s3://, gs:// or a path every "
                            "node mounts)")
        return uri.rstrip("/")
    return str(Path(uri).expanduser().resolve())


class Storage:
    """One run's place in the storage: `URI/<name>`. Picklable (Ray pickles the recorder that
    mirrors with it): the filesystem is opened on first use in each process."""

    def __init__(self, uri: str, name: str):
        self.uri = normalize(uri)
        self.name = name
        self._fs = None
        self._root = None
        self.failing: str | None = None  # the last copy's error, while the storage does not answer

    def __getstate__(self):
        return {"uri": self.uri, "name": self.name, "_fs": None, "_root": None, "failing": None}

    @property
    def tune_root(self) -> str:
        """Where Ray Tune's experiments of this run live (its `storage_path` for the side phases;
        the trials' experiment is `uri` + name)."""
        return f"{self.uri}/{self.name}"

    @property
    def records_uri(self) -> str:
        return f"{self.tune_root}/{RECORDS}"

    def _open(self):
        if self._fs is None:
            import pyarrow.fs as pafs

            try:
                self._fs, self._root = pafs.FileSystem.from_uri(self.uri)
            except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for bad URIs and missing support
                raise UserError(f"--storage {self.uri}: {_first_line(exc)}") from None
        return self._fs

    def _path(self, *parts: str) -> str:
        self._open()
        return "/".join([self._root.rstrip("/"), self.name, *parts])

    def answers(self) -> bool:
        """Whether the storage answers now (a listing of the run's folder); called after an error,
        to tell a storage outage from a trial's own failure."""
        import pyarrow.fs as pafs

        try:
            self._open().get_file_info(pafs.FileSelector(self._path(), allow_not_found=True))
        except Exception:  # OSError from the filesystem
            return False
        return True

    def check(self) -> None:
        """Write, read back and delete a small file under the run's folder: a storage the search
        cannot use fails here in one line, before anything trains."""
        fs = self._open()
        probe = self._path(RECORDS, ".probe")
        try:
            fs.create_dir(self._path(RECORDS), recursive=True)
            with fs.open_output_stream(probe) as out:
                out.write(b"trilevel-search")
            with fs.open_input_stream(probe) as src:
                ok = src.read() == b"trilevel-search"
            fs.delete_file(probe)
        except Exception as exc:  # OSError from every pyarrow filesystem
            raise UserError(f"cannot use --storage {self.uri}: {_first_line(exc)}") from None
        if not ok:
            raise UserError(f"cannot use --storage {self.uri}: a file written there read back differently")

    def push(self, run_dir: Path, say: Callable[[str], None] | None = None) -> bool:
        """Copy the run's record files there. On failure: False, and one line the first time (and
        one when it answers again); nothing is raised, the run directory keeps the records."""
        try:
            fs = self._open()
            fs.create_dir(self._path(RECORDS), recursive=True)
            for name in RECORD_FILES:
                path = Path(run_dir) / name
                if path.is_file():
                    with fs.open_output_stream(self._path(RECORDS, name)) as out:
                        out.write(path.read_bytes())
        except Exception as exc:  # OSError, or a UserError for a URI that stopped resolving
            if say is not None:  # a silent caller (the recorder) leaves the line to the phase's end
                if self.failing is None:
                    say(f"--storage {self.uri} does not answer ({_first_line(exc)}); the records stay in {run_dir} "
                        "and are copied once it answers again.")
                self.failing = _first_line(exc)
            return False
        if self.failing is not None and say is not None:
            say(f"--storage {self.uri} answers again; the records are copied.")
        self.failing = None
        return True

    def holds_search(self) -> bool:
        """Whether a search of this name was stored here (its search.json)."""
        import pyarrow.fs as pafs

        try:
            return self._open().get_file_info(self._path(RECORDS, SEARCH_FILE)).type == pafs.FileType.File
        except Exception as exc:  # OSError from the filesystem
            raise UserError(f"cannot read --storage {self.uri}: {_first_line(exc)}") from None

    def pull(self, run_dir: Path) -> list[str]:
        """Copy the stored record files into `run_dir` (a resume on a machine that lacks them);
        returns the names copied. A UserError when the storage holds no search of this name."""
        import pyarrow.fs as pafs

        fs = self._open()
        try:
            found = {Path(info.path).name: info for info in fs.get_file_info(pafs.FileSelector(
                self._path(RECORDS), allow_not_found=True)) if info.type == pafs.FileType.File}
        except Exception as exc:
            raise UserError(f"cannot read --storage {self.uri}: {_first_line(exc)}") from None
        names = [n for n in RECORD_FILES if n in found]
        if SEARCH_FILE not in names:
            raise UserError(f"nothing to resume: {self.records_uri} holds no search")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        parts = {name: Path(run_dir) / f".{name}.part" for name in names}
        try:  # every file fetched before any is in place, search.json last: a cut pull leaves no half run
            for name in names:
                with fs.open_input_stream(found[name].path) as src:
                    parts[name].write_bytes(src.read())
        except Exception as exc:  # OSError from the filesystem
            for part in parts.values():
                part.unlink(missing_ok=True)
            raise UserError(f"cannot read --storage {self.uri}: {_first_line(exc)}") from None
        for name in sorted(names, key=lambda n: n == SEARCH_FILE):
            os.replace(parts[name], Path(run_dir) / name)
        return names

    def ahead_of(self, run_dir: Path) -> int:
        """How many finished trials the stored records hold that `run_dir`'s do not: another driver
        continued the search from the storage since this run directory was last written."""
        import tempfile

        from trilevel.store.run_store import TRIALS_FILE, finished_trial_ids

        try:
            with self._open().open_input_stream(self._path(RECORDS, TRIALS_FILE)) as src:
                data = src.read()
        except FileNotFoundError:
            return 0
        except Exception as exc:  # OSError from the filesystem
            raise UserError(f"cannot read --storage {self.uri}: {_first_line(exc)}") from None
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / TRIALS_FILE).write_bytes(data)
            stored = set(finished_trial_ids(tmp))
        return len(stored - set(finished_trial_ids(run_dir)))

    def drop_checkpoints(self) -> int:
        """Delete the run's stored training checkpoints (`checkpoint_*` folders) once the search has
        finished, as `drop_checkpoints` does locally; returns the bytes freed."""
        import pyarrow.fs as pafs

        try:
            fs = self._open()
            infos = fs.get_file_info(pafs.FileSelector(self._path(), recursive=True, allow_not_found=True))
            folders = sorted({i.path for i in infos if i.type == pafs.FileType.Directory
                              and Path(i.path).name.startswith("checkpoint_")})
            freed = sum(i.size or 0 for i in infos if i.type == pafs.FileType.File
                        and any(i.path.startswith(f + "/") for f in folders))
            for folder in folders:
                fs.delete_dir(folder)
        except Exception:  # OSError: a storage that stopped answering keeps them; nothing else depends on it
            return 0
        return freed


class StorageLease:
    """One driver per run across machines: a lease object, `URI/<name>/driver.lease`, holding the
    driver's host, pid, start and a heartbeat it renews every `renew_seconds` from a thread.

    Why: the run directory's `flock` (search/lock.py) guards one machine's disk; two drivers on two
    machines resuming the same stored run would both train its trials and overwrite each other's
    records. An object store has no locks, so this is a lease: a driver whose heartbeat is older than
    `stale_seconds` (it died, or lost the storage) is taken over, with a note. Writing is last-writer-
    wins: after writing its lease a driver reads it back `settle_seconds` later and refuses if another
    driver's write replaced it, so of two drivers that start together only the last writer goes on
    (S3 and GCS read their own writes). A heartbeat is the writing driver's clock time, compared
    with the reader's: keep the machines' clocks within `stale_seconds` of each other (NTP does)."""

    def __init__(self, storage: "Storage", renew_seconds: float = LEASE_RENEW, stale_seconds: float = LEASE_STALE,
                 settle_seconds: float = 1.0):
        self.storage = storage
        self.renew_seconds, self.stale_seconds, self.settle_seconds = renew_seconds, stale_seconds, settle_seconds
        self.token = uuid.uuid4().hex
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "token": self.token}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: dict | None = None  # the holder that took the lease over while this driver ran

    @property
    def path(self) -> str:
        return self.storage._path(LEASE_FILE)

    def read(self) -> dict:
        """The lease as stored ({} when there is none or it is unreadable)."""
        fs = self.storage._open()
        try:
            with fs.open_input_stream(self.path) as src:
                holder = json.loads(src.read())
        except (OSError, ValueError):  # none (FileNotFoundError), unreadable, or not JSON
            return {}
        return holder if isinstance(holder, dict) else {}

    def _write(self) -> None:
        with self.storage._open().open_output_stream(self.path) as out:
            out.write(json.dumps({**self.me, "heartbeat": time.time()}).encode())

    def acquire(self, say: Callable[[str], None] = lambda line: None) -> None:
        """Take the lease, or raise `UserError` naming the driver that holds it; a stale one is taken
        over with a note through `say`. Starts the heartbeat."""
        holder = self.read()
        if holder and holder.get("token") != self.token:
            try:
                age = time.time() - float(holder.get("heartbeat") or 0)
            except (TypeError, ValueError):  # a garbled lease: nobody renews it
                age = float("inf")
            if age < self.stale_seconds and not _dead_here(holder):
                raise UserError(f"{self.storage.tune_root} is in use by another trilevel-search ({_describe(holder)}, "
                                f"renewed {max(age, 0):.0f} s ago); wait for it to finish or stop it first (a lease "
                                f"not renewed for {self.stale_seconds:.0f} s is taken over)")
            say(f"Took over {self.storage.tune_root} from a driver that stopped renewing its lease "
                f"({_describe(holder)}, last renewed {age:.0f} s ago).")
        try:
            self._write()
        except Exception as exc:
            raise UserError(f"cannot use --storage {self.storage.uri}: {_first_line(exc)}") from None
        time.sleep(self.settle_seconds)
        now = self.read()
        if now.get("token") != self.token:
            raise UserError(f"{self.storage.tune_root} was taken by another trilevel-search as this one started "
                            f"({_describe(now)}); wait for it to finish or stop it first")
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="trilevel-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_seconds):
            try:
                holder = self.read()
                if holder and holder.get("token") != self.token:  # taken over while we did not renew
                    self.lost = holder
                    return
                self._write()
            except Exception:  # the storage does not answer: the search says so; try again next time
                pass

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still ours."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        try:
            if self.read().get("token") == self.token:
                self.storage._open().delete_file(self.path)
        except Exception:  # gone storage: the lease goes stale by itself
            pass


class StorageDown(Exception):
    """The storage stopped answering during a phase: the search stops, as if interrupted, keeping
    every finished trial in the run directory; `--resume` continues once it answers."""


def require_shared_storage(nodes: list[dict], storage: str | None) -> None:
    """Refuse a cluster whose machines share no disk Ray Tune can use: with more than one host among
    the live nodes, trial checkpoints written on one machine must be readable from another."""
    hosts = {n.get("NodeManagerAddress") for n in nodes if n.get("Alive", n.get("alive", True))}
    if len(hosts) > 1 and storage is None:
        raise UserError(f"this Ray cluster spans {len(hosts)} machines, which share no run directory: pass "
                        "--storage s3://BUCKET/PATH (or gs://..., or a path every node mounts)")


def _dead_here(holder: dict) -> bool:
    """The lease's driver ran on this machine and its process is gone: no need to wait it out."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
