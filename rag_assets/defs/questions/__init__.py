"""Cold-start wiring (issue 12): synthetic_questions -> tag_classifier, and hybrid_tuning over the index."""

from rag_assets.defs.questions import assets

ASSETS = [assets.synthetic_questions, assets.tag_classifier, assets.hybrid_tuning]
CHECKS = []
SENSORS = []
SCHEDULES = []
JOBS = []
