"""The data flywheel (issue 15): query log + feedback -> triage -> eval candidates, tag corrections, docs gaps."""
