"""Numba kernels (CPU and CUDA) for the learning rules: pure functions over arrays.

- `synapse_math`: the one definition of each per-synapse/per-row update (CPU and CUDA).
- `state_layout`: the array records the kernels update in place.
- `cpu_*`: event-driven `@njit(cache=True)` kernels and their wrappers; `cpu_threads`
  compiles each row loop twice, threaded and serial.
- `cuda_*`: `@cuda.jit` kernels with the same semantics (NUMBA_ENABLE_CUDASIM=1 on CPU).

Importing this package imports neither numba nor numpy; each kernel module does. It does
choose Numba's threading layer for the whole process (`prefer_workqueue_threading`), before
any kernel can run, whoever calls the kernels (adapters, replay, benchmarks).
"""

import os
import sys
from pathlib import Path

from plastic.kernels_numba.cache_guard import invalidate_stale_cache

THREADING_LAYER_ENV = "NUMBA_THREADING_LAYER"


def prefer_workqueue_threading() -> None:
    """Use Numba's "workqueue" threading layer unless the user chose one.

    Left to itself Numba picks OpenMP, and after any parallel kernel (even one run with one
    thread) its idle workers spin beside torch's own OpenMP threads: every torch op of the
    process then runs ~100x slower on a 2-core machine (measured: 200 small torch ops 35 ms
    before, 3.2 s after one parallel Numba call). "workqueue" has no spinning workers. Set
    NUMBA_THREADING_LAYER to choose another layer. Only effective before the first parallel
    kernel runs, hence called when this package is imported.
    """
    if THREADING_LAYER_ENV in os.environ:
        return
    numba = sys.modules.get("numba")
    if numba is None:  # numba reads the variable when it is first imported
        os.environ[THREADING_LAYER_ENV] = "workqueue"
    elif numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"


prefer_workqueue_threading()
invalidate_stale_cache(Path(__file__).resolve().parent)
