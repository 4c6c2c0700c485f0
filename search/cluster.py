"""The Ray side of a search: start or join Ray (local, quiet, loopback; or `--address`), fail fast
when a cluster is not there, and the resources each trial asks for."""

from __future__ import annotations

import os

from trilevel.core.errors import UserError

from .options import SearchOptions


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
    """Per-trial resources, refused up front when the cluster cannot ever grant them."""
    cpus, gpus = cluster.get("CPU", 0), cluster.get("GPU", 0)
    if opts.cpus_per_trial > cpus:
        raise UserError(f"--cpus-per-trial {opts.cpus_per_trial} exceeds the cluster's {cpus:g} CPUs")
    if opts.gpus_per_trial > gpus:
        raise UserError(f"--gpus-per-trial {opts.gpus_per_trial} but the cluster has {gpus:g} GPUs")
    resources = {"cpu": opts.cpus_per_trial}
    if opts.gpus_per_trial:
        resources["gpu"] = opts.gpus_per_trial
    return resources
