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

import os
from pathlib import Path
from typing import Callable

from trilevel.core.errors import UserError
from trilevel.core.run_store import RECORD_FILES

RECORDS = "records"  # the folder, under URI/<run name>, holding the copied record files
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
            if self.failing is None and say is not None:
                say(f"--storage {self.uri} does not answer ({_first_line(exc)}); the records stay in {run_dir} "
                    "and are copied once it answers again.")
            self.failing = _first_line(exc)
            return False
        if self.failing is not None and say is not None:
            say(f"--storage {self.uri} answers again; the records are copied.")
        self.failing = None
        return True

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
        if "search.json" not in names:
            raise UserError(f"nothing to resume: {self.records_uri} holds no search")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        for name in names:
            with fs.open_input_stream(found[name].path) as src:
                tmp = Path(run_dir) / f".{name}.part"
                tmp.write_bytes(src.read())
                os.replace(tmp, Path(run_dir) / name)
        return names

    def drop_checkpoints(self) -> int:
        """Delete the run's stored training checkpoints (`checkpoint_*` folders) once the search has
        finished, as `drop_checkpoints` does locally; returns the bytes freed."""
        import pyarrow.fs as pafs

        fs = self._open()
        infos = fs.get_file_info(pafs.FileSelector(self._path(), recursive=True, allow_not_found=True))
        folders = sorted({i.path for i in infos if i.type == pafs.FileType.Directory
                          and Path(i.path).name.startswith("checkpoint_")})
        freed = sum(i.size or 0 for i in infos if i.type == pafs.FileType.File
                    and any(i.path.startswith(f + "/") for f in folders))
        for folder in folders:
            fs.delete_dir(folder)
        return freed


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
