"""Helpers for the kernel tests: run a rule on a backend over given spikes and rewards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from plastic.rules import get_rule

# float32 tolerance for kernel-vs-reference comparisons. The kernels reorder a few float32
# operations (lazy decay: one multiplication by lambda**k instead of k multiplications),
# so results agree to a few ulps of the values involved, not bit for bit.
RTOL = 1e-5
ATOL = 1e-5


def spike_trains(rng: np.random.Generator, steps: int, n: int, probability: float) -> np.ndarray:
    """Bernoulli spikes, bool [steps, n]."""
    return rng.random((steps, n)) < probability


def run_rule(
    name: str,
    params: Any,
    backend: str,
    pre: np.ndarray,
    post: np.ndarray,
    weights: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    chunk: int = 10,
    rewards: Sequence[float] | None = None,
    state: Any = None,
    to_weights: Callable[[np.ndarray], Any] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run `chunk` steps per call, then one reward per chunk; return weights and state dict."""
    rule = get_rule(name)
    w = (to_weights or (lambda a: a))(weights.copy())
    if state is None:
        state = rule.init_state(
            weights.shape[0], weights.shape[1], params, backend=backend, mask=mask
        )
    for index, start in enumerate(range(0, pre.shape[0], chunk)):
        stop = start + chunk
        w, state = rule.step(pre[start:stop], post[start:stop], w, state, params)
        if rewards is not None:
            w, state = rule.apply_reward(rewards[index % len(rewards)], w, state, params)
    w, state = rule.flush(w, state, params)
    if hasattr(w, "copy_to_host"):
        host = w.copy_to_host()
    elif hasattr(w, "detach"):
        host = w.detach().cpu().numpy().copy()
    else:
        host = np.array(w, copy=True)
    return host, rule.state_to_dict(state)


def assert_same_run(
    reference: tuple[np.ndarray, dict[str, np.ndarray]],
    candidate: tuple[np.ndarray, dict[str, np.ndarray]],
) -> None:
    """Weights and every state array agree within float32 tolerance."""
    ref_w, ref_state = reference
    w, state = candidate
    np.testing.assert_allclose(w, ref_w, rtol=RTOL, atol=ATOL, err_msg="weights differ")
    assert sorted(state) == sorted(ref_state)
    for key, ref_value in ref_state.items():
        np.testing.assert_allclose(
            state[key], ref_value, rtol=RTOL, atol=ATOL, err_msg=f"state {key!r} differs"
        )
