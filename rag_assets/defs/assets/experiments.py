"""Experiment assets (issue 6): sweep variants and experiments_table."""
