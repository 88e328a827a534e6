"""Benchmark scripts: run as `python -m benchmarks.<name>`; each prints ratios against a baseline timed in the same run."""
