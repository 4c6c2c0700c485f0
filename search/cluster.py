"""The Ray side of a search: start or join Ray (local, quiet, loopback; or `--address`), fail fast
when a cluster is not there, and the resources each trial asks for."""

from __future__ import annotations

import os

from trilevel.core.errors import UserError

from .options import SearchOptions

TRIAL_DRIVER_MEMORY = 2**20  # bytes: what a trial that only waits for its Ray Train workers asks for


def init_ray(opts: SearchOptions) -> None:
    from .ray_compat import init_cluster, init_local, quiet_loggers

    quiet_loggers()
    if opts.address:
        check_reachable(opts.address)
        try:
            init_cluster(opts.address)
        except Exception as exc:  # ConnectionError, TimeoutError, ValueError from Ray
            raise UserError(f"cannot connect to the Ray cluster at {opts.address}: {exc}".splitlines()[0]) from None
        return
    init_local()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's long connection retries, when the cluster is not there."""
    import socket

    if address == "auto":
        from .ray_compat import current_cluster_address

        address = os.environ.get("RAY_ADDRESS") or current_cluster_address()
        if not address:
            raise UserError("--address auto: no running Ray cluster found on this machine (start one with `ray start --head`)")
    if address.startswith("ray://"):
        address = address[len("ray://"):]
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address} within {timeout:g}s: {exc.strerror or exc}") from None


def trial_resources(opts: SearchOptions, cluster: dict) -> dict:
    """What a Tune trial asks for, refused up front when the cluster cannot ever grant it: its
    CPUs and GPUs; with `--workers-per-trial` > 1, a token of memory and no CPU, since the trial
    only waits for its Ray Train workers, which ask for `worker_resources` each in a placement
    group of their own (Tune refuses an empty request; a CPU share would keep N workers x 1 CPU
    off an N-CPU machine)."""
    cpus, gpus = cluster.get("CPU", 0), cluster.get("GPU", 0)
    n = opts.workers_per_trial
    per = f"--workers-per-trial {n} x " if n > 1 else ""
    if opts.cpus_per_trial * n > cpus:
        raise UserError(f"{per}--cpus-per-trial {opts.cpus_per_trial:g} exceeds the cluster's {cpus:g} CPUs")
    if opts.gpus_per_trial * n > gpus:
        raise UserError(f"{per}--gpus-per-trial {opts.gpus_per_trial:g} but the cluster has {gpus:g} GPUs")
    if n > 1:
        return {"memory": TRIAL_DRIVER_MEMORY}
    resources = {"cpu": opts.cpus_per_trial}
    if opts.gpus_per_trial:
        resources["gpu"] = opts.gpus_per_trial
    return resources


def worker_resources(opts: SearchOptions) -> dict:
    """Each Ray Train worker's resources under `--workers-per-trial` (Ray Train's spelling)."""
    resources = {"CPU": opts.cpus_per_trial}
    if opts.gpus_per_trial:
        resources["GPU"] = opts.gpus_per_trial
    return resources


def trial_concurrency(opts: SearchOptions, cluster: dict) -> int:
    """Trials at once: `--concurrency`, or as many as the cluster's CPUs (and GPUs) hold, a trial
    taking `--workers-per-trial` times its per-worker resources."""
    n = opts.workers_per_trial
    slots = cluster.get("CPU", 1) // (opts.cpus_per_trial * n)
    if opts.gpus_per_trial:
        slots = min(slots, cluster.get("GPU", 0) // (opts.gpus_per_trial * n))
    return opts.concurrency or max(1, int(slots))
