"""Checks and conversions of the arrays callers hand to the kernels: spikes, activities,
weights, row selections and connectivity masks, as the C-contiguous numpy views the Numba
kernels read. Every check fails with a one-line `RuleError`; weights are never copied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastic.errors import RuleError


def is_torch_tensor(x: Any) -> bool:
    """True for torch tensors, without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def as_numpy(x: Any) -> np.ndarray:
    """A numpy view of an array-like (torch CPU tensors are viewed, not copied)."""
    if is_torch_tensor(x):
        if x.device.type != "cpu":
            raise RuleError(f"this backend needs CPU arrays, got a tensor on {x.device}")
        return x.detach().numpy()
    return np.asarray(x)


def spikes_as_steps(spikes: Any, n: int, what: str, steps: int | None = None) -> np.ndarray:
    """Spikes [n] or [T, n] (bool, int or float; any strides) as C-contiguous uint8 [T, n].

    Nonzero means "spiked". With `steps`, T must equal it (pre and post cover the same steps).
    """
    array = _steps_view(spikes, n, what, "spikes", steps)
    if array.dtype == np.uint8 or array.dtype == np.bool_:
        return np.ascontiguousarray(array).view(np.uint8)
    return np.ascontiguousarray(array != 0).view(np.uint8)


def activity_as_steps(activity: Any, n: int, what: str, steps: int | None = None) -> np.ndarray:
    """Activities (spikes or rates) [n] or [T, n] as C-contiguous float32 [T, n]."""
    array = _steps_view(activity, n, what, "activity", steps)
    return np.ascontiguousarray(array, dtype=np.float32)


def _steps_view(values: Any, n: int, what: str, noun: str, steps: int | None) -> np.ndarray:
    """`values` [n] or [T, n] as a numpy [T, n] view (RuleError on another shape, or on
    another T than `steps`)."""
    array = as_numpy(values)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n:
        raise RuleError(f"{what} {noun} must have shape [{n}] or [T, {n}], got {array.shape}")
    if steps is not None and array.shape[0] != steps:
        raise RuleError(
            f"pre and post {noun} cover different numbers of steps: {steps} vs {array.shape[0]}"
        )
    return array


def weights_as_numpy(weights: Any, n_pre: int, n_post: int) -> np.ndarray:
    """The caller's float32 [n_pre, n_post] weights as a writable numpy view (no copy)."""
    array = as_numpy(weights)
    if array.dtype != np.float32:
        raise RuleError(f"weights must be float32, got {array.dtype}")
    if array.shape != (n_pre, n_post):
        raise RuleError(
            f"weights must be pre-major [n_pre, n_post] = [{n_pre}, {n_post}], got {array.shape}"
        )
    if not array.flags.writeable:
        raise RuleError("weights must be writable (they are updated in place)")
    return array


def row_indices(rows: Any, n_pre: int) -> np.ndarray:
    """Selected rows as int64 indices.

    `rows` is either a selection vector [n_pre] of dtype bool, uint8 or float (nonzero =
    selected, e.g. this step's pre spikes) or integer indices of any other integer dtype.
    """
    array = as_numpy(rows)
    if array.dtype == np.bool_ or array.dtype == np.uint8 or array.dtype.kind == "f":
        if array.shape != (n_pre,):
            raise RuleError(f"a row selection vector must have shape [{n_pre}], got {array.shape}")
        return np.flatnonzero(array).astype(np.int64)
    if array.dtype.kind not in "iu":
        raise RuleError(f"rows must be indices or a selection vector, got dtype {array.dtype}")
    indices = array.astype(np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= n_pre):
        raise RuleError(
            f"row indices must lie in [0, {n_pre}), got {indices.min()}..{indices.max()}"
        )
    return np.unique(indices)


def connectivity_mask(mask: Any, n_pre: int, n_post: int) -> np.ndarray:
    """A uint8 mask [n_pre, n_post] (1 = plastic synapse), or ones [1, n_post] if mask is None.

    Masked-out synapses (0) never change and never accumulate eligibility. The [1, n_post]
    all-ones row stands for "fully connected" without storing n_pre x n_post bytes.
    """
    if mask is None:
        return np.ones((1, n_post), dtype=np.uint8)
    array = as_numpy(mask)
    if array.shape != (n_pre, n_post):
        raise RuleError(f"mask must have shape [{n_pre}, {n_post}], got {array.shape}")
    return np.ascontiguousarray(array != 0).view(np.uint8)
