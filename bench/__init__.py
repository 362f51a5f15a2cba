"""Benchmarks (timing lives here, never in tests): see bench/bench.py and bench/RESULTS.md."""
