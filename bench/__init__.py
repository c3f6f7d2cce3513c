"""Benchmarks that print figures (never timed tests). ``bench.client_bench``: the Python client."""
