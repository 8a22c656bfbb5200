"""The shipped models, as package data: each folder is a run folder (see README.md here and toolkit/zoo.py)."""
