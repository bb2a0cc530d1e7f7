"""Scripts that print measured figures; run them as `python -m benchmarks.NAME`."""
