"""Numba kernels (CPU and CUDA) for the learning rules: pure functions over arrays."""
