"""Connect to one Ray: the one named by RAY_ADDRESS, a local `ray start` cluster, or a new local one."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path


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

    `ray start` writes it to <ray temp dir>/ray_current_cluster and `ray stop` removes it; a stale file (the
    machine rebooted) is detected by its GCS port not answering. Read directly, not through ray._private.
    """
    base = os.environ.get("RAY_TMPDIR") or (os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None)
    path = Path(base or ("/tmp" if sys.platform != "win32" else tempfile.gettempdir())) / "ray" / "ray_current_cluster"
    try:
        address = path.read_text(encoding="utf-8").strip()
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=0.5):
            return address
    except (OSError, ValueError):
        return None
