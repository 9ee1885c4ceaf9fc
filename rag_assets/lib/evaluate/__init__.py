"""Evaluation: eval sets, metrics, judges, responses and the score report."""
