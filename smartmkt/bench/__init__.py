"""Benchmarks: each prints JSON figures; none of them is a test."""
