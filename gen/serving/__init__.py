"""Triton model repositories and server control (issue 5)."""
