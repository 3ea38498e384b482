"""CUDA twin of the context memory's learning step: the active detectors step in parallel.

One thread per active detector walks its synapse list with the same math as the CPU
kernel (`memory_math`: metaplastic rate, soft-bounded step); a detector without a synapse
onto the target grows one from a slot claimed atomically, so the pool's order may differ
from the CPU's while every detector's synapses (as a map byte -> weight) are the same.
Importing this module imports `numba.cuda` (NUMBA_ENABLE_CUDASIM=1 runs it on the CPU).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32

from plastic.kernels_numba.memory_layout import MemoryTables
from plastic.kernels_numba.memory_math import metaplastic_rate, step_synapse_list

THREADS = 64


@cuda.jit
def _detectors_step(detectors, target, decay, trace, head, fanout, post, weight, nxt, n_syn):
    """Each thread: one distinct detector of `detectors` steps toward byte `target`."""
    k = cuda.grid(1)
    if k >= detectors.shape[0]:
        return
    d = detectors[k]
    rate, decayed = metaplastic_rate(trace[d], decay)
    found = step_synapse_list(head[d], target, rate, post, weight, nxt)
    if not found:
        p = cuda.atomic.add(n_syn, 0, 1)
        post[p] = target
        weight[p] = float32(rate)
        nxt[p] = head[d]
        head[d] = p
        fanout[d] += 1
    trace[d] = float32(decayed + 1.0)


def detectors_step_cuda(
    tables: MemoryTables, detectors: np.ndarray, target: int, decay: float
) -> None:
    """Step the distinct `detectors` (ids) toward `target` on the device, in place on
    `tables` (copied there and back: the chat keeps its tables on the host). The pool must
    have room for len(detectors) more synapses."""
    if len(np.unique(detectors)) != len(detectors):
        raise ValueError("detectors must be distinct (one thread owns each list)")
    names = ("det_trace", "det_head", "det_fanout", "syn_post", "syn_weight", "syn_next")
    device = {name: cuda.to_device(getattr(tables, name)) for name in names}
    n_syn = cuda.to_device(tables.sizes[1:2].copy())
    blocks = max(1, (len(detectors) + THREADS - 1) // THREADS)
    _detectors_step[blocks, THREADS](
        cuda.to_device(np.ascontiguousarray(detectors, np.int64)),
        np.uint8(target),
        np.float64(decay),
        *(device[name] for name in names),
        n_syn,
    )
    for name in names:
        device[name].copy_to_host(getattr(tables, name))
    tables.sizes[1] = n_syn.copy_to_host()[0]
