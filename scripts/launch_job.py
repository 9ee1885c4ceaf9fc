"""Launch a job of the workspace's code location and wait for it: `python scripts/launch_job.py rag_pipeline`.

`dagster job execute -m ...` records a run with no code location, so the UI does not list it under the job;
`dagster job launch` only queues it (the queue is served by the daemon of `dagster dev`). This creates the run
from the workspace's code location (workspace.yaml, location `rag_assets`) as the UI's Launch button does, hands it
to the instance's run launcher, and waits for the run to finish. Exit status 0 when it succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time

import dagster as dg
# No public API creates a run from a code location outside the UI; these are what `dagster job launch` uses.
from dagster._cli.job import _create_run
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget


def launch(job_name: str, workspace: str, location: str, poll_s: float = 2.0) -> dg.DagsterRun:
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME
    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[workspace])) as process:
        request = process.create_request_context()
        code_location = request.get_code_location(location)
        (repo,) = code_location.get_repositories().values()
        remote_job = repo.get_full_job(job_name)
        run = _create_run(instance=instance, code_location=code_location, remote_repo=repo, remote_job=remote_job,
                          run_config={}, tags={"rag/trigger": "quickstart"}, op_selection=None, run_id=None)
        print(f"launched run {run.run_id} of {job_name} in code location {location}", flush=True)
        instance.launch_run(run.run_id, request)
        # The run worker is a child of the code server this context owns: keep it until the run ends.
        while not (run := instance.get_run_by_id(run.run_id)).is_finished:
            time.sleep(poll_s)
        return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job")
    parser.add_argument("-w", "--workspace", default="workspace.yaml")
    parser.add_argument("-l", "--location", default="rag_assets")
    args = parser.parse_args()
    run = launch(args.job, args.workspace, args.location)
    print(f"run {run.run_id}: {run.status.value}")
    return 0 if run.status == dg.DagsterRunStatus.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
