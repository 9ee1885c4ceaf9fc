"""Evaluation wiring: eval set -> responses -> scores -> score report, its check and the re-evaluation sensor."""

import dagster as dg

from rag_assets.defs.evaluate import assets, checks, sensors

ASSETS = dg.load_assets_from_modules([assets])
CHECKS = [checks.scores_not_dropped]
SENSORS = [sensors.evaluate_after_reindex]
