"""Dense torch reference of the rate-based Hebbian rule with Oja's normalisation.

Readable ground truth for the kernels' tests. Pure functions returning new tensors; `run`
is the "torch" backend and writes the result into the caller's weights in place.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from plastic.rules.reference_stdp import mask_tensor, weights_tensor
from plastic.rules.traces import rate_gain


class HebbReferenceState(NamedTuple):
    """Rate traces on the torch backend (immutable record)."""

    rate_pre: torch.Tensor  # float32 [n_pre]
    rate_post: torch.Tensor  # float32 [n_post]
    step: int
    mask: torch.Tensor | None  # bool [n_pre, n_post]; None = fully connected


def init_state(
    n_pre: int, n_post: int, params: Any, mask: Any = None, device: Any = None
) -> HebbReferenceState:
    """Zero rates at step 0."""
    return HebbReferenceState(
        rate_pre=torch.zeros(n_pre, device=device),
        rate_post=torch.zeros(n_post, device=device),
        step=0,
        mask=mask_tensor(mask, n_pre, n_post, device),
    )


def oja_update(
    w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, params: Any
) -> torch.Tensor:
    """dW[i, j] = learning_rate y[j] (x[i] - y[j] w[i, j]) on plastic synapses, scaled to
    ||dW||_F <= max_update_norm."""
    dw = params.learning_rate * y[None, :] * (x[:, None] - y[None, :] * w)
    if mask is not None:
        dw = torch.where(mask, dw, torch.zeros_like(dw))
    norm = float(torch.linalg.vector_norm(dw, dtype=torch.float64))
    if norm > params.max_update_norm:
        dw = dw * (params.max_update_norm / norm)
    return dw


def step(
    pre: torch.Tensor, post: torch.Tensor, w: torch.Tensor, state: HebbReferenceState, params: Any
) -> tuple[torch.Tensor, HebbReferenceState]:
    """One step: rates r <- r + (a - r)/tau_rate; every update_interval steps, Oja (pure)."""
    gain = rate_gain(params.tau_rate)
    rate_pre = state.rate_pre + gain * (pre - state.rate_pre)
    rate_post = state.rate_post + gain * (post - state.rate_post)
    state = state._replace(rate_pre=rate_pre, rate_post=rate_post, step=state.step + 1)
    if state.step % params.update_interval != 0:
        return w, state
    dw = oja_update(w, rate_pre, rate_post, state.mask, params)
    new_w = (w + dw).clamp(params.w_min, params.w_max)
    if state.mask is not None:
        new_w = torch.where(state.mask, new_w, w)
    return new_w, state


def run(
    pre: Any, post: Any, weights: Any, state: HebbReferenceState, params: Any
) -> tuple[Any, HebbReferenceState]:
    """The "torch" backend: `step` over [n] or [T, n] activities, weights updated in place."""
    from plastic.kernels_numba.arrays import activity_as_steps

    w = weights_tensor(weights)
    if hasattr(pre, "detach"):
        pre = pre.detach().cpu()
    if hasattr(post, "detach"):
        post = post.detach().cpu()
    pre_steps = activity_as_steps(pre, state.rate_pre.shape[0], "pre")
    post_steps = activity_as_steps(post, state.rate_post.shape[0], "post", pre_steps.shape[0])
    pre_t = torch.from_numpy(pre_steps).to(w.device)
    post_t = torch.from_numpy(post_steps).to(w.device)
    current = w
    for t in range(pre_t.shape[0]):
        current, state = step(pre_t[t], post_t[t], current, state, params)
    w.copy_(current)
    return weights, state


def to_dict(state: HebbReferenceState) -> dict[str, np.ndarray]:
    """Canonical dict of numpy arrays (see `plastic.rules.hebb.state_to_dict`)."""
    data = {
        "rate_pre": state.rate_pre.cpu().numpy().copy(),
        "rate_post": state.rate_post.cpu().numpy().copy(),
        "step": np.array([state.step], np.int64),
    }
    if state.mask is not None and not bool(state.mask.all()):
        data["mask"] = state.mask.cpu().numpy().astype(np.uint8)
    return data


def from_dict(data: Any, device: Any = None) -> HebbReferenceState:
    """Inverse of `to_dict`."""
    rate_pre = torch.tensor(np.asarray(data["rate_pre"], np.float32).reshape(-1), device=device)
    rate_post = torch.tensor(np.asarray(data["rate_post"], np.float32).reshape(-1), device=device)
    return HebbReferenceState(
        rate_pre=rate_pre,
        rate_post=rate_post,
        step=int(np.asarray(data["step"]).reshape(-1)[0]),
        mask=mask_tensor(data.get("mask"), rate_pre.shape[0], rate_post.shape[0], device),
    )
