"""Retrieval: the one Retriever that evaluation, experiments, the CLI and serving use."""
