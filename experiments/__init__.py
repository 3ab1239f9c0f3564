"""Experiment scripts behind docs/results.md (``python -m experiments.NAME --help``)."""
