"""Connect to one Ray: the one named by RAY_ADDRESS, a local `ray start` cluster, or a new local one."""

from __future__ import annotations

import os


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> str:
    """Initialise Ray once per process and say how it was reached."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return "already connected"
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        return f"connected to {address}"
    # A cluster from `ray start --head` on this machine is shared by every Dagster step.
    started = _ray_start_cluster()
    if started:
        try:
            ray.init(address=started, log_to_driver=False, ignore_reinit_error=True)
            return "connected to the local cluster"
        except (ConnectionError, RuntimeError):
            pass
    ray.init(
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
        # Ray runs workers at niceness 15; here the workers are this job's own embedding actors.
        _system_config={"worker_niceness": 0},
    )
    return "started a local Ray in this process"


def _ray_start_cluster() -> str | None:
    """The address of a live cluster made by `ray start --head`, if any.

    Never a Ray that another process started with `ray.init()`: that one is private to its owner,
    its CPUs are the owner's, and it dies with it.
    """
    try:
        from ray._private.services import find_gcs_addresses
        from ray._private.utils import read_ray_address

        address = read_ray_address()  # written by `ray start`, removed by `ray stop`
        return address if address and address in find_gcs_addresses() else None
    except Exception:  # private API: absence just means "start our own"
        return None
