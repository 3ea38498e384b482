"""Numba kernels (CPU and CUDA) for the learning rules: pure functions over arrays.

- `synapse_math`: the one definition of each per-synapse/per-row update (CPU and CUDA).
- `state_layout`: the array records the kernels update in place.
- `cpu_*`: event-driven `@njit(cache=True)` kernels and their wrappers; `cpu_threads`
  compiles each row loop twice, threaded and serial.
- `cuda_*`: `@cuda.jit` kernels with the same semantics (NUMBA_ENABLE_CUDASIM=1 on CPU).
- `arrays`: the checks and conversions of caller arrays (spikes, weights, masks, rows).
- `adapter_kernels`: the adapters' per-token kernels (spike packing, row sums, their LIF
  population, the readout's mix); `threads`: the process's Numba thread policy.

This package is the ground floor: it imports nothing from `plastic` but `plastic.errors`.

Importing this package imports neither numba nor numpy; each kernel module does. It does
choose Numba's threading layer for the whole process (`prefer_workqueue_threading`), before
any kernel can run, whoever calls the kernels (adapters, replay, benchmarks); see `threads`.
"""

from pathlib import Path

from plastic.kernels_numba.cache_guard import invalidate_stale_cache
from plastic.kernels_numba.threads import prefer_workqueue_threading

prefer_workqueue_threading()
invalidate_stale_cache(Path(__file__).resolve().parent)
