"""Hybrid routing (issue 13): a classifier sends each question to the open LLM or to the strong one.

labels.py reads labelled questions; classifier.py trains, calibrates, thresholds and saves routers;
router.py is the routing API (load_router, route, generator); report.py compares routing policies.
"""
