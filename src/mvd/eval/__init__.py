"""Evaluation: accuracies, single-view validation, multi-view testing, frozen-feature probes."""
