"""RAG logic with no Dagster import: each module is one stage, testable alone."""
