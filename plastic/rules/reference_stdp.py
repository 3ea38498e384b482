"""Dense torch reference of pair STDP: the readable ground truth the kernels are tested against.

Every step touches all n_pre x n_post synapses (that is what makes it a reference, not a
fast path). The functions are pure: they return new tensors. `run` is the "torch" backend:
it loops `step` over T steps and copies the result into the caller's weights in place.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from plastic.kernels_numba.arrays import as_numpy, is_torch_tensor
from plastic.rules.traces import decay_factor


class StdpReferenceState(NamedTuple):
    """Traces of pair STDP on the torch backend (immutable record of tensors)."""

    x_pre: torch.Tensor  # float32 [n_pre]
    x_post: torch.Tensor  # float32 [n_post]
    step: int  # steps taken
    mask: torch.Tensor | None  # bool [n_pre, n_post]; None = fully connected


def as_tensor(x: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 tensor view (numpy arrays are shared via torch.from_numpy, not copied)."""
    if is_torch_tensor(x):
        tensor = x.detach()
    else:
        array = np.asarray(x)
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    tensor = tensor if device is None else tensor.to(device)
    return tensor if tensor.dtype == torch.float32 else tensor.float()


def weights_tensor(weights: Any) -> torch.Tensor:
    """The caller's weights as a float32 tensor sharing their memory (updated in place)."""
    tensor = weights.detach() if is_torch_tensor(weights) else torch.from_numpy(as_numpy(weights))
    if tensor.dtype != torch.float32:
        from plastic.errors import RuleError

        raise RuleError(f"weights must be float32, got {tensor.dtype}")
    return tensor


def mask_tensor(mask: Any, n_pre: int, n_post: int, device: Any = None) -> torch.Tensor | None:
    """A bool connectivity mask tensor, or None for "fully connected"."""
    if mask is None:
        return None
    from plastic.kernels_numba.arrays import connectivity_mask

    return torch.from_numpy(connectivity_mask(mask, n_pre, n_post).astype(bool)).to(device)


def spike_steps(
    spikes: Any, n: int, what: str, device: Any, steps: int | None = None
) -> torch.Tensor:
    """Spikes [n] or [T, n] as float32 0/1 tensor [T, n] (nonzero = spike)."""
    from plastic.kernels_numba.arrays import spikes_as_steps

    if is_torch_tensor(spikes):
        spikes = spikes.detach().cpu()
    return torch.from_numpy(spikes_as_steps(spikes, n, what, steps)).to(device).float()


def init_state(
    n_pre: int, n_post: int, params: Any, mask: Any = None, device: Any = None
) -> StdpReferenceState:
    """Zero traces at step 0."""
    return StdpReferenceState(
        x_pre=torch.zeros(n_pre, device=device),
        x_post=torch.zeros(n_post, device=device),
        step=0,
        mask=mask_tensor(mask, n_pre, n_post, device),
    )


def potentiation_factor(w: torch.Tensor, params: Any) -> torch.Tensor | float:
    """A+(w): a_plus (additive) or a_plus * (w_max - w) (multiplicative, soft bound)."""
    if params.weight_dependence == "multiplicative":
        return params.a_plus * (params.w_max - w)
    return params.a_plus


def depression_factor(w: torch.Tensor, params: Any) -> torch.Tensor | float:
    """A-(w): a_minus (additive) or a_minus * (w - w_min) (multiplicative, soft bound)."""
    if params.weight_dependence == "multiplicative":
        return params.a_minus * (w - params.w_min)
    return params.a_minus


def advance_traces(
    pre: torch.Tensor, post: torch.Tensor, x_pre: torch.Tensor, x_post: torch.Tensor, params: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """x <- lambda * x + s for both layers (traces first, then weights: see stdp docs)."""
    return (
        x_pre * decay_factor(params.tau_pre) + pre,
        x_post * decay_factor(params.tau_post) + post,
    )


def stdp_term(
    pre: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    x_pre: torch.Tensor,
    x_post: torch.Tensor,
    params: Any,
) -> torch.Tensor:
    """dW[i, j] = A+(w) x_pre[i] s_post[j] - A-(w) s_pre[i] x_post[j] (traces after spikes)."""
    ltp = potentiation_factor(w, params) * x_pre[:, None] * post[None, :]
    ltd = depression_factor(w, params) * pre[:, None] * x_post[None, :]
    return ltp - ltd


def step(
    pre: torch.Tensor,
    post: torch.Tensor,
    w: torch.Tensor,
    state: StdpReferenceState,
    params: Any,
) -> tuple[torch.Tensor, StdpReferenceState]:
    """One step of pair STDP: returns new weights and state (pure)."""
    x_pre, x_post = advance_traces(pre, post, state.x_pre, state.x_post, params)
    dw = stdp_term(pre, post, w, x_pre, x_post, params)
    dw = dw.clamp(-params.max_step_update, params.max_step_update)
    new_w = (w + dw).clamp(params.w_min, params.w_max)
    if state.mask is not None:
        new_w = torch.where(state.mask, new_w, w)
    return new_w, state._replace(x_pre=x_pre, x_post=x_post, step=state.step + 1)


def run(
    pre: Any, post: Any, weights: Any, state: StdpReferenceState, params: Any
) -> tuple[Any, StdpReferenceState]:
    """The "torch" backend: `step` over [n] or [T, n] spikes, weights updated in place."""
    w = weights_tensor(weights)
    device = w.device
    pre_steps = spike_steps(pre, state.x_pre.shape[0], "pre", device)
    post_steps = spike_steps(post, state.x_post.shape[0], "post", device, pre_steps.shape[0])
    current = w
    for t in range(pre_steps.shape[0]):
        current, state = step(pre_steps[t], post_steps[t], current, state, params)
    w.copy_(current)
    return weights, state


def to_dict(state: StdpReferenceState) -> dict[str, np.ndarray]:
    """Canonical dict of numpy arrays (see `plastic.rules.stdp.state_to_dict`)."""
    data = {
        "x_pre": state.x_pre.cpu().numpy().copy(),
        "x_post": state.x_post.cpu().numpy().copy(),
        "step": np.array([state.step], np.int64),
    }
    if state.mask is not None and not bool(state.mask.all()):
        data["mask"] = state.mask.cpu().numpy().astype(np.uint8)
    return data


def from_dict(data: Any, device: Any = None) -> StdpReferenceState:
    """Inverse of `to_dict`."""
    x_pre = torch.tensor(np.asarray(data["x_pre"], np.float32), device=device)
    x_post = torch.tensor(np.asarray(data["x_post"], np.float32), device=device)
    mask = data.get("mask")
    return StdpReferenceState(
        x_pre=x_pre,
        x_post=x_post,
        step=int(np.asarray(data["step"]).reshape(-1)[0]),
        mask=mask_tensor(mask, x_pre.shape[0], x_post.shape[0], device),
    )
