"""Benchmarks: figures for the docs, never timed assertions in tests."""
