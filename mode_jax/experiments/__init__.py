"""Experiments built on the trainer (the paper's comparison in miniature)."""
