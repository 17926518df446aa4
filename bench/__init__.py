"""Benchmarks of liuhen, run from the repository root with ``python -m bench.<name>``."""
