"""The data flywheel's wiring: query log + feedback -> underperforming_queries -> eval_candidates, docs_gaps;
feedback -> tag_corrections; sensors on new feedback and on eval-set changes."""

import dagster as dg

from rag_assets.defs.feedback import assets, sensors

ASSETS = dg.load_assets_from_modules([assets])
SENSORS = [sensors.new_feedback, sensors.evaluate_after_eval_set_change]
JOBS = [sensors.feedback_triage]
