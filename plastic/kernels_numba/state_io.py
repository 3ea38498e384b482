"""Kernel states to and from the canonical, backend-independent dict of numpy arrays.

The canonical dict is what the dense reference would hold: current traces, eligibility as
of the current step, baseline, step count, and the mask when not fully connected. Event
states are saved only when nothing is deferred (after `flush`), so no ring buffer or
per-row timestamp is ever persisted and a saved state loads into any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import RuleError
from plastic.kernels_numba.arrays import connectivity_mask
from plastic.kernels_numba.state_layout import (
    EligibilityState,
    RateState,
    TimingState,
    is_synced,
    new_eligibility_state,
    new_rate_state,
    new_timing_state,
)


def host(array: Any) -> np.ndarray:
    """A numpy copy of a numpy or device array."""
    if isinstance(array, np.ndarray):
        return array.copy()
    return array.copy_to_host()


def _mask_entry(mask: Any) -> dict[str, np.ndarray]:
    """{"mask": uint8 [n_pre, n_post]}, or nothing when every synapse is plastic."""
    mask = host(mask)
    return {} if np.all(mask != 0) else {"mask": mask.astype(np.uint8)}


def _vector(data: Mapping[str, Any], key: str, dtype: type) -> np.ndarray:
    if key not in data:
        raise RuleError(f"saved rule state lacks {key!r}")
    return np.ascontiguousarray(np.asarray(data[key], dtype=dtype).reshape(-1))


def _step(data: Mapping[str, Any]) -> int:
    return int(_vector(data, "step", np.int64)[0])


def _canonical(clock: Any, mask: Any, **vectors: Any) -> dict[str, np.ndarray]:
    """Host copies of `vectors`, the step count from `clock` and the mask entry."""
    data = {key: host(value) for key, value in vectors.items()}
    data["step"] = np.array([clock[0]], np.int64)
    return {**data, **_mask_entry(mask)}


def timing_to_dict(state: TimingState) -> dict[str, np.ndarray]:
    """x_pre, x_post, step and mask of a flushed pair-STDP state."""
    if not is_synced(state):
        raise RuleError("the rule state has deferred updates: call flush() before saving it")
    return _canonical(state.clock, state.mask, x_pre=state.x_pre, x_post=state.x_post)


def timing_from_dict(data: Mapping[str, Any]) -> TimingState:
    """A numpy TimingState from a canonical dict (nothing deferred)."""
    x_pre = _vector(data, "x_pre", np.float32)
    x_post = _vector(data, "x_post", np.float32)
    step = _step(data)
    state = new_timing_state(
        x_pre.shape[0],
        x_post.shape[0],
        connectivity_mask(data.get("mask"), x_pre.shape[0], x_post.shape[0]),
    )
    state.x_pre[:] = x_pre
    state.x_post[:] = x_post
    state.x_pre_synced[:] = x_pre
    state.row_step[:] = step
    state.clock[:] = step
    return state


def eligibility_to_dict(state: EligibilityState) -> dict[str, np.ndarray]:
    """Timing entries plus eligibility [n_pre, n_post] and baseline [baseline, rewards]."""
    data = timing_to_dict(state.timing)
    data["eligibility"] = host(state.eligibility)
    data["baseline"] = state.baseline.copy()
    return data


def eligibility_from_dict(data: Mapping[str, Any]) -> EligibilityState:
    """A numpy EligibilityState from a canonical dict."""
    timing = timing_from_dict(data)
    n_pre, n_post = timing.x_pre.shape[0], timing.x_post.shape[0]
    eligibility = np.asarray(data.get("eligibility"), dtype=np.float32)
    if eligibility.shape != (n_pre, n_post):
        raise RuleError(f"saved eligibility has shape {eligibility.shape}, need {(n_pre, n_post)}")
    state = new_eligibility_state(n_pre, n_post, timing.mask)._replace(timing=timing)
    state.eligibility[:] = eligibility
    state.baseline[:] = _vector(data, "baseline", np.float64)[:2]
    return state


def rate_to_dict(state: RateState) -> dict[str, np.ndarray]:
    """rate_pre, rate_post, step and mask of a rate-based state."""
    return _canonical(state.clock, state.mask, rate_pre=state.rate_pre, rate_post=state.rate_post)


def rate_from_dict(data: Mapping[str, Any]) -> RateState:
    """A numpy RateState from a canonical dict."""
    rate_pre = _vector(data, "rate_pre", np.float32)
    rate_post = _vector(data, "rate_post", np.float32)
    n_pre, n_post = rate_pre.shape[0], rate_post.shape[0]
    state = new_rate_state(n_pre, n_post, connectivity_mask(data.get("mask"), n_pre, n_post))
    state.rate_pre[:] = rate_pre
    state.rate_post[:] = rate_post
    state.clock[0] = _step(data)
    return state


class StateFormat(NamedTuple):
    """One Numba state layout with its constructor and canonical-dict (de)serialisers.

    `array_field` names a field that holds arrays: numpy on the CPU, device arrays on CUDA.
    """

    layout: type
    new_state: Callable[[int, int, np.ndarray], Any]
    array_field: str
    to_dict: Callable[[Any], dict[str, np.ndarray]]
    from_dict: Callable[[Mapping[str, Any]], Any]


TIMING = StateFormat(TimingState, new_timing_state, "x_pre", timing_to_dict, timing_from_dict)
ELIGIBILITY = StateFormat(
    EligibilityState,
    new_eligibility_state,
    "eligibility",
    eligibility_to_dict,
    eligibility_from_dict,
)
RATE = StateFormat(RateState, new_rate_state, "rate_pre", rate_to_dict, rate_from_dict)
