"""Serving wiring: the query log and the feedback on it, as assets read from the server's SQLite log."""

import dagster as dg

from rag_assets.defs.serve import assets

ASSETS = dg.load_assets_from_modules([assets])
CHECKS = []
SENSORS = []
SCHEDULES = []
JOBS = []
