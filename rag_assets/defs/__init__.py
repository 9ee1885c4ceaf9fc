"""Thin Dagster wiring over `rag_assets.lib`: assets, checks, sensors, schedules, resources."""
