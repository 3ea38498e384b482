"""Numba kernels (CPU and CUDA) for the learning rules: pure functions over arrays.

- `synapse_math`: the one definition of each per-synapse/per-row update (CPU and CUDA).
- `state_layout`: the array records the kernels update in place.
- `cpu_*`: event-driven `@njit(parallel=True, cache=True)` kernels and their wrappers.
- `cuda_*`: `@cuda.jit` kernels with the same semantics (NUMBA_ENABLE_CUDASIM=1 on CPU).

Importing this package imports neither numba nor numpy; each kernel module does.
"""

from pathlib import Path

from plastic.kernels_numba.cache_guard import invalidate_stale_cache

invalidate_stale_cache(Path(__file__).resolve().parent)
