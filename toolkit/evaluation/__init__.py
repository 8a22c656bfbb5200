"""Evaluation: bpgan-compare, speech evaluation and the classical anchors (the metrics are toolkit/metrics.py)."""
