"""Evaluation: image and signal quality metrics."""
