"""Benchmarks behind `plastic bench ...` (importable as `plastic_benchmarks`)."""
