"""Evaluation harness: retrieval datasets with document- and passage-level truth, synthetic
long-context tasks, and retrieval metrics with paired significance tests."""
