"""Shared pieces of the Numba CUDA backend: device transfers, launch shape, reductions,
and the start of a step of the spike-timing rules (traces and ring of post spikes).

Importing this module imports `numba.cuda`. With NUMBA_ENABLE_CUDASIM=1 (set before numba
is imported) the kernels run on the CPU in numba's simulator, which is how the tests check
them on machines without a GPU; blocks are then small to keep the simulator fast.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import cuda

from plastic.errors import RuleError
from plastic.kernels_numba.arrays import activity_as_steps, is_torch_tensor, spikes_as_steps
from plastic.kernels_numba.state_layout import TimingState
from plastic.kernels_numba.synapse_math import decayed_trace

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
# Threads per block (one block works on one weight row). A power of two: see block_sum.
BLOCK = 4 if SIMULATED else 128

# State fields that stay on the host: the host decides steps and flushes.
HOST_FIELDS = frozenset({"clock", "baseline"})


def to_device(record: Any) -> Any:
    """Copy every array of a state record (NamedTuple, possibly nested) to the device."""
    fields = {}
    for name, value in record._asdict().items():
        if hasattr(value, "_asdict"):
            fields[name] = to_device(value)
        elif name in HOST_FIELDS or not isinstance(value, np.ndarray):
            fields[name] = value
        else:
            fields[name] = cuda.to_device(value)
    return type(record)(**fields)


def device_weights(weights: Any, n_pre: int, n_post: int) -> Any:
    """The caller's float32 [n_pre, n_post] device weights (numba device array or any
    __cuda_array_interface__ object such as a CUDA torch tensor), without copying."""
    if getattr(weights, "__cuda_ndarray__", False):
        array = weights
    elif hasattr(weights, "__cuda_array_interface__") and hasattr(cuda, "as_cuda_array"):
        array = cuda.as_cuda_array(weights.detach() if is_torch_tensor(weights) else weights)
    else:
        raise RuleError(
            "the cuda backend needs weights on the GPU (a numba device array or a CUDA "
            f"torch tensor), got {type(weights).__name__}"
        )
    if array.dtype != np.float32 or tuple(array.shape) != (n_pre, n_post):
        raise RuleError(
            f"weights must be float32 [{n_pre}, {n_post}], got {array.dtype} {tuple(array.shape)}"
        )
    return array


def _host_array(x: Any) -> Any:
    if getattr(x, "__cuda_ndarray__", False):
        return x.copy_to_host()
    if is_torch_tensor(x):
        return x.detach().cpu()
    return x


def device_spikes(spikes: Any, n: int, what: str, steps: int | None = None) -> Any:
    """Spikes [n] or [T, n] as a uint8 [T, n] device array (host inputs are copied over)."""
    return cuda.to_device(spikes_as_steps(_host_array(spikes), n, what, steps))


def device_activity(activity: Any, n: int, what: str, steps: int | None = None) -> Any:
    """Activities [n] or [T, n] as a float32 [T, n] device array."""
    return cuda.to_device(activity_as_steps(_host_array(activity), n, what, steps))


def device_rows(rows: Any, n_pre: int) -> Any:
    """Selected rows (indices or selection vector) as an int64 device array."""
    from plastic.kernels_numba.arrays import row_indices

    return cuda.to_device(row_indices(_host_array(rows), n_pre))


def grid_for(n: int) -> int:
    """Blocks of BLOCK threads covering n items."""
    return max(1, (n + BLOCK - 1) // BLOCK)


@cuda.jit(device=True)
def block_sum(partial, value):
    """Sum `value` over the threads of a block (BLOCK a power of two); result in thread 0."""
    tid = cuda.threadIdx.x
    partial[tid] = value
    cuda.syncthreads()
    width = BLOCK // 2
    while width > 0:
        if tid < width:
            partial[tid] += partial[tid + width]
        cuda.syncthreads()
        width //= 2
    return partial[0]


@cuda.jit
def clear_slot(ring_count, slot):
    """ring_count[slot] = 0 (before a step's post spikes are appended)."""
    ring_count[slot] = 0


@cuda.jit
def advance_and_record(
    pre_s, post_s, x_pre, x_post, ring_post, ring_count, slot, decay_pre, decay_post
):
    """Traces of both layers; this step's post spike indices appended to ring slot `slot`."""
    k = cuda.grid(1)
    if k < x_pre.shape[0]:
        x_pre[k] = decayed_trace(x_pre[k], decay_pre, pre_s[k])
    if k < x_post.shape[0]:
        x_post[k] = decayed_trace(x_post[k], decay_post, post_s[k])
        if post_s[k] != 0:
            position = cuda.atomic.add(ring_count, slot, 1)
            ring_post[slot, position] = k


def begin_step(timing: TimingState, pre_s: Any, post_s: Any, coef: tuple) -> int:
    """Start a step of a spike-timing rule: advance the host clock, then on the device empty
    the step's ring slot, advance both traces and record the post spikes; returns the step.
    (every spike-timing rule's coefficients have decay_pre and decay_post.)"""
    t = timing
    step_no = int(t.clock[0]) + 1
    t.clock[0] = step_no
    slot = step_no % t.ring_count.shape[0]
    clear_slot[1, 1](t.ring_count, slot)
    advance_and_record[grid_for(max(t.x_pre.shape[0], t.x_post.shape[0])), BLOCK](
        pre_s,
        post_s,
        t.x_pre,
        t.x_post,
        t.ring_post,
        t.ring_count,
        slot,
        coef.decay_pre,
        coef.decay_post,
    )
    return step_no


def sync_device() -> None:
    """Wait for queued kernels (host reads of device results follow)."""
    cuda.synchronize()
