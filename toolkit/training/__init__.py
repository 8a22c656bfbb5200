"""Training: stages, loops, checkpoints, distributed data parallel, reports."""
