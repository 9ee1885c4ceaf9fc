"""Experiments: sweeps, per-variant builds and scores, the comparison table, promotion."""
