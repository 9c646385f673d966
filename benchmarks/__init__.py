"""Benchmarks (not tests): timings as ratios against a reference measured in the same run."""
