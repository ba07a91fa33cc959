"""Seed tutorials and their datasets, used by the notebooks, tests and benchmarks."""
