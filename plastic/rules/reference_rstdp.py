"""Dense torch reference of reward-modulated STDP with an eligibility trace (MSTDPET).

Readable ground truth for the kernels' tests: every step decays and updates the whole
n_pre x n_post eligibility. Pure functions returning new tensors; `run` and `reward` are
the "torch" backend and write the result into the caller's weights in place.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from plastic.rules.baseline import reward_modulation
from plastic.rules.reference_stdp import (
    advance_traces,
    mask_tensor,
    spike_steps,
    stdp_term,
    weights_tensor,
)
from plastic.rules.traces import decay_factor


class RstdpReferenceState(NamedTuple):
    """Traces, eligibility and reward baseline on the torch backend (immutable record)."""

    x_pre: torch.Tensor  # float32 [n_pre]
    x_post: torch.Tensor  # float32 [n_post]
    eligibility: torch.Tensor  # float32 [n_pre, n_post]
    baseline: float  # running mean of rewards
    rewards_seen: int
    step: int
    mask: torch.Tensor | None  # bool [n_pre, n_post]; None = fully connected


def init_state(
    n_pre: int, n_post: int, params: Any, mask: Any = None, device: Any = None
) -> RstdpReferenceState:
    """Zero traces and eligibility, baseline 0, step 0."""
    return RstdpReferenceState(
        x_pre=torch.zeros(n_pre, device=device),
        x_post=torch.zeros(n_post, device=device),
        eligibility=torch.zeros(n_pre, n_post, device=device),
        baseline=0.0,
        rewards_seen=0,
        step=0,
        mask=mask_tensor(mask, n_pre, n_post, device),
    )


def step(
    pre: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    state: RstdpReferenceState,
    params: Any,
) -> RstdpReferenceState:
    """One step: e <- exp(-1/tau_e) e + STDP(pre, post, w) on plastic synapses (pure)."""
    x_pre, x_post = advance_traces(pre, post, state.x_pre, state.x_post, params)
    stdp = stdp_term(pre, post, w, x_pre, x_post, params)
    if state.mask is not None:
        stdp = torch.where(state.mask, stdp, torch.zeros_like(stdp))
    eligibility = state.eligibility * decay_factor(params.tau_eligibility) + stdp
    return state._replace(x_pre=x_pre, x_post=x_post, eligibility=eligibility, step=state.step + 1)


def reward(
    value: float, w: torch.Tensor, state: RstdpReferenceState, params: Any
) -> tuple[torch.Tensor, RstdpReferenceState]:
    """dW = learning_rate (r - b) e, scaled down to ||dW||_F <= max_update_norm; clamp (pure)."""
    modulation, baseline = reward_modulation(value, state.baseline, params.baseline_tau)
    dw = (params.learning_rate * modulation) * state.eligibility
    norm = float(torch.linalg.vector_norm(dw, dtype=torch.float64))
    if norm > params.max_update_norm:
        dw = dw * (params.max_update_norm / norm)
    new_w = (w + dw).clamp(params.w_min, params.w_max)
    if state.mask is not None:
        new_w = torch.where(state.mask, new_w, w)
    return new_w, state._replace(baseline=baseline, rewards_seen=state.rewards_seen + 1)


def run(
    pre: Any, post: Any, weights: Any, state: RstdpReferenceState, params: Any
) -> tuple[Any, RstdpReferenceState]:
    """The "torch" backend step: `step` over [n] or [T, n] spikes (weights do not change)."""
    w = weights_tensor(weights)
    pre_steps = spike_steps(pre, state.x_pre.shape[0], "pre", w.device)
    post_steps = spike_steps(post, state.x_post.shape[0], "post", w.device, pre_steps.shape[0])
    for t in range(pre_steps.shape[0]):
        state = step(pre_steps[t], post_steps[t], w, state, params)
    return weights, state


def apply_reward(
    value: float, weights: Any, state: RstdpReferenceState, params: Any
) -> tuple[Any, RstdpReferenceState]:
    """The "torch" backend reward: `reward`, written into the caller's weights in place."""
    w = weights_tensor(weights)
    new_w, state = reward(value, w, state, params)
    w.copy_(new_w)
    return weights, state


def to_dict(state: RstdpReferenceState) -> dict[str, np.ndarray]:
    """Canonical dict of numpy arrays (see `plastic.rules.rstdp.state_to_dict`)."""
    data = {
        "x_pre": state.x_pre.cpu().numpy().copy(),
        "x_post": state.x_post.cpu().numpy().copy(),
        "step": np.array([state.step], np.int64),
        "eligibility": state.eligibility.cpu().numpy().copy(),
        "baseline": np.array([state.baseline, state.rewards_seen], np.float64),
    }
    if state.mask is not None and not bool(state.mask.all()):
        data["mask"] = state.mask.cpu().numpy().astype(np.uint8)
    return data


def from_dict(data: Any, device: Any = None) -> RstdpReferenceState:
    """Inverse of `to_dict`."""
    x_pre = torch.tensor(np.asarray(data["x_pre"], np.float32).reshape(-1), device=device)
    x_post = torch.tensor(np.asarray(data["x_post"], np.float32).reshape(-1), device=device)
    baseline = np.asarray(data["baseline"], np.float64).reshape(-1)
    return RstdpReferenceState(
        x_pre=x_pre,
        x_post=x_post,
        eligibility=torch.tensor(np.asarray(data["eligibility"], np.float32), device=device),
        baseline=float(baseline[0]),
        rewards_seen=int(baseline[1]),
        step=int(np.asarray(data["step"]).reshape(-1)[0]),
        mask=mask_tensor(data.get("mask"), x_pre.shape[0], x_post.shape[0], device),
    )
