"""Connect to one Ray: the one named by RAY_ADDRESS, a local one already running, or a new local one."""

from __future__ import annotations

import os


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> str:
    """Initialise Ray once per process and say how it was reached."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return "already connected"
    address = address or os.environ.get("RAY_ADDRESS")
    common = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    if address:
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        return f"connected to {address}"
    # A cluster from `ray start --head` on this machine is shared by every Dagster step.
    if _local_cluster_running():
        try:
            ray.init(address="auto", log_to_driver=False, ignore_reinit_error=True)
            return "connected to the local cluster"
        except (ConnectionError, RuntimeError):
            pass
    ray.init(num_cpus=num_cpus or os.cpu_count(), **common)
    return "started a local Ray in this process"


def _local_cluster_running() -> bool:
    try:
        from ray._private.services import find_gcs_addresses

        return bool(find_gcs_addresses())
    except Exception:  # private API: absence just means "start our own"
        return False
