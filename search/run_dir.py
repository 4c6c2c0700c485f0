"""The run directory's identity: search.json is created when a search starts, and on `--resume` it
must describe the same search (model, data, space, length, budget, objective, sampler, recipe,
workers per trial)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from pathlib import Path

from trilevel.core.atomic import ensure_writable
from trilevel.core.errors import UserError
from trilevel.store.run_store import (
    SEARCH_FILE, SEARCH_RUNNING, EpochsAuto, SearchInfo, load_records, read_search, write_search,
)
from trilevel.spaces import SearchSpace

from .constants import EPOCHS_AUTO
from .options import SearchOptions


def now() -> str:
    """The local time with its offset, to the second: search.json's `started` and `finished`."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def prepare(opts: SearchOptions, space: SearchSpace, grace: int, run_dir: Path) -> SearchInfo:
    """Create search.json, or on resume check that the stored run is the same search."""
    meta_path = run_dir / SEARCH_FILE
    identity = {
        "model": opts.run.model, "dataset": opts.run.dataset, "space": space.describe(),
        "epochs": f"{EPOCHS_AUTO} (max {opts.max_epochs})" if opts.epochs_auto else opts.run.epochs,
        "budget": opts.budget, "objective": opts.objective, "sampler": opts.sampler_name,
        # a trial's checkpoints are a Tune trial's on one process, a Train run's on several
        "workers_per_trial": opts.workers_per_trial,
    }
    if opts.resume:
        if not meta_path.exists():
            raise UserError(f"nothing to resume: no search in {run_dir}")
        try:
            raw = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise UserError(f"cannot resume: {meta_path} is corrupt") from None
        old_run, new_run = raw.get("run_config") or {}, opts.run.to_dict()
        if "recipe" not in old_run:
            raise UserError(f"cannot resume {run_dir}: it was made by an earlier trilevel-search (before named "
                            "recipes); its finished results stay readable with trilevel-report, start a new search")
        info = read_search(run_dir)
        if "workers_per_trial" not in raw:  # written before search.json recorded it: the trials know
            sizes = [r.world_size for r in load_records(run_dir).values()]
            info = dataclasses.replace(info, workers_per_trial=max(sizes, default=1))
        epochs = (f"{EPOCHS_AUTO} (max {info.epochs_auto.max_epochs})" if info.epochs_auto is not None
                  else info.epochs)
        stored = {"model": info.model, "dataset": info.dataset, "space": info.space_spec, "epochs": epochs,
                  "budget": info.budget, "objective": info.objective, "sampler": info.sampler,
                  "workers_per_trial": info.workers_per_trial}
        diffs = [f"{k} {stored[k]!r} -> {identity[k]!r}" if k != "space" else "space"
                 for k in identity if stored[k] != identity[k]]
        diffs += [f"{k} {old_run.get(k)!r} -> {new_run[k]!r}" for k in new_run
                  if k not in ("model", "dataset", "epochs", "device", "workers", "output")
                  and old_run.get(k) != new_run[k]]
        if diffs:
            raise UserError(f"cannot resume {run_dir}: it was a different search ({'; '.join(diffs)})")
        # --full-epochs plans only the full training: a resume may change it
        info = dataclasses.replace(info, status=SEARCH_RUNNING, full_epochs=opts.full_epochs)
        write_search(run_dir, info)
        return info
    if meta_path.exists():
        raise UserError(f"{run_dir} already holds a search; add --resume to continue it or pick another --name")
    ensure_writable(run_dir)
    info = SearchInfo(
        name=run_dir.name, model=opts.run.model, dataset=opts.run.dataset, space=space.name,
        objective=opts.objective, sampler=opts.sampler_name, budget=opts.budget,
        epochs=0 if opts.epochs_auto else opts.run.epochs,  # 0: --epochs auto has not chosen yet
        grace_epochs=grace, reduction_factor=opts.reduction_factor, max_acc_drop=opts.max_acc_drop,
        seed=opts.seed, command=opts.command, started=now(), finished=None, wall_seconds=None,
        status=SEARCH_RUNNING, run_config=opts.run, baseline_accs=[], varied=sorted(space.params),
        space_spec=space.describe(), finalists=opts.finalists, full_epochs=opts.full_epochs,
        epochs_auto=EpochsAuto(opts.max_epochs, opts.run.seed) if opts.epochs_auto else None,
        workers_per_trial=opts.workers_per_trial,
    )
    write_search(run_dir, info)
    return info
