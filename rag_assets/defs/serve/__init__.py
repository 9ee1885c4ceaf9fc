"""Serving wiring: the query log and the feedback on it, as assets read from the server's SQLite log."""

import dagster as dg

from rag_assets.defs.serve import assets

ASSETS = dg.load_assets_from_modules([assets])
CHECKS = []
SENSORS = []
# The log grows while the server runs: re-read it hourly once the schedule is turned on (the flywheel's input).
serve_log = dg.define_asset_job("serve_log", selection=dg.AssetSelection.groups("serve"),
                                description="Summarize the API's query log and feedback.")
JOBS = [serve_log]
SCHEDULES = [dg.ScheduleDefinition(name="serve_log_hourly", job=serve_log, cron_schedule="0 * * * *",
                                   default_status=dg.DefaultScheduleStatus.STOPPED)]
