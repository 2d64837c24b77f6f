"""Benchmarks: each compares netplane with a named reference in the same run."""
