"""The array records the Numba CPU and CUDA kernels operate on (numpy here; device arrays on CUDA).

Event-driven bookkeeping for pair-based rules (`TimingState`)
-------------------------------------------------------------
Weights are pre-major, `w[i, j]`. A step costs O((pre spikes + post spikes) x N):

- A pre spike of neuron i brings row i up to date and applies the step's LTD/LTP to it.
- A post spike of neuron j would potentiate the whole *column* j (strided, cache-hostile).
  Instead its index is appended to a ring buffer of recent post spikes, and row i replays the
  pending LTP, step by step and in order, the next time it is brought up to date: when pre
  neuron i spikes (the only moment a spiking forward pass reads row i), at `flush`, before a
  reward, or when the ring is about to wrap (every `ring_steps` steps). Replay is exact: row
  i's pre trace between its own spikes is a pure decay, recomputed from `x_pre_synced[i]`
  with the same float32 multiplications as the dense reference.

Eligibility (`EligibilityState`) decays lazily per row with timestamps: row i is stored as
of step `row_step[i]`; bringing it to step t multiplies it once by lambda_e**(t - row_step[i])
and adds replayed increments decayed by lambda_e**(t - s). Every factor is <= 1, so nothing
can overflow however long the run (a global rescaled-time frame, by contrast, grows as
lambda_e**-t and overflows float32 after ~88 tau_e steps).

`clock` is always a host numpy array [current step, step at which every row was last
synced]; the host decides when to flush and passes the step to CUDA kernels.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

RING_STEPS = 64  # steps of post spikes kept for deferred LTP; a full sync runs every 64 steps


class TimingState(NamedTuple):
    """Traces and deferred-LTP bookkeeping of a pair-based spike-timing rule."""

    x_pre: Any  # float32 [n_pre]: presynaptic traces at the current step
    x_post: Any  # float32 [n_post]: postsynaptic traces at the current step
    x_pre_synced: Any  # float32 [n_pre]: x_pre[i] at step row_step[i]
    row_step: Any  # int64 [n_pre]: row i of the weights/eligibility is exact up to this step
    ring_post: Any  # int32 [RING_STEPS, n_post]: post spike indices; slot = step % RING_STEPS
    ring_count: Any  # int32 [RING_STEPS]: number of post spikes in each slot
    mask: Any  # uint8 [n_pre, n_post] (1 = plastic) or [1, n_post] of ones (fully connected)
    pre_index: Any  # int32 [n_pre]: scratch, indices of the current step's pre spikes
    clock: np.ndarray  # int64 [2] on the host: [current step, step of the last full sync]


class EligibilityState(NamedTuple):
    """State of the three-factor rule: timing bookkeeping plus eligibility and reward baseline."""

    timing: TimingState
    eligibility: Any  # float32 [n_pre, n_post]: row i stored as of step timing.row_step[i]
    baseline: np.ndarray  # float64 [2] on the host: [running reward baseline, rewards seen]
    row_square: Any  # float64 [n_pre]: scratch for the update norm


class RateState(NamedTuple):
    """State of a rate-based rule: firing-rate traces of both layers."""

    rate_pre: Any  # float32 [n_pre]
    rate_post: Any  # float32 [n_post]
    mask: Any  # uint8 [n_pre, n_post] or [1, n_post] of ones
    row_square: Any  # float64 [n_pre]: scratch for the update norm
    clock: np.ndarray  # int64 [1] on the host: steps taken


def new_timing_state(
    n_pre: int, n_post: int, mask: np.ndarray, ring_steps: int = RING_STEPS
) -> TimingState:
    """Zero traces, every row synced at step 0 (a smaller ring only makes syncs more frequent)."""
    return TimingState(
        x_pre=np.zeros(n_pre, np.float32),
        x_post=np.zeros(n_post, np.float32),
        x_pre_synced=np.zeros(n_pre, np.float32),
        row_step=np.zeros(n_pre, np.int64),
        ring_post=np.zeros((ring_steps, n_post), np.int32),
        ring_count=np.zeros(ring_steps, np.int32),
        mask=mask,
        pre_index=np.zeros(n_pre, np.int32),
        clock=np.zeros(2, np.int64),
    )


def new_eligibility_state(
    n_pre: int, n_post: int, mask: np.ndarray, ring_steps: int = RING_STEPS
) -> EligibilityState:
    """Zero traces and eligibility, baseline 0."""
    return EligibilityState(
        timing=new_timing_state(n_pre, n_post, mask, ring_steps),
        eligibility=np.zeros((n_pre, n_post), np.float32),
        baseline=np.zeros(2, np.float64),
        row_square=np.zeros(n_pre, np.float64),
    )


def new_rate_state(n_pre: int, n_post: int, mask: np.ndarray) -> RateState:
    """Zero rates at step 0."""
    return RateState(
        rate_pre=np.zeros(n_pre, np.float32),
        rate_post=np.zeros(n_post, np.float32),
        mask=mask,
        row_square=np.zeros(n_pre, np.float64),
        clock=np.zeros(1, np.int64),
    )


def is_synced(timing: TimingState) -> bool:
    """Whether every row is exact at the current step (nothing deferred)."""
    row_step = timing.row_step
    if not isinstance(row_step, np.ndarray):
        row_step = row_step.copy_to_host()
    return bool(np.all(row_step == timing.clock[0]))
