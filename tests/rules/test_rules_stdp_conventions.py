"""Pair STDP conventions: coincident spikes, trace mapping to Norse, bounds and update cap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic.rules import get_rule
from plastic.rules.traces import decay_factor, tau_from_euler

BACKENDS = ["torch", "numba"]


def run_stdp(params, pre, post, w, backend):
    rule = get_rule("stdp")
    w = w.copy()
    state = rule.init_state(w.shape[0], w.shape[1], params, backend=backend)
    w, state = rule.step(pre, post, w, state, params)
    w, state = rule.flush(w, state, params)
    return w


@pytest.mark.parametrize("backend", BACKENDS)
def test_coincident_spikes_use_traces_after_both_spikes(backend: str) -> None:
    """A pre and a post spike in the same step (empty traces before) change w by A+ - A-.

    Brian2's convention (depress with the post trace from before the post spike) would
    give A+ instead; we follow Norse/BindsNET/SpikingJelly."""
    params = get_rule("stdp").Params(a_plus=0.01, a_minus=0.004)
    w = run_stdp(
        params,
        np.ones((1, 1), bool),
        np.ones((1, 1), bool),
        np.full((1, 1), 0.5, np.float32),
        backend,
    )
    assert w[0, 0] == pytest.approx(0.5 + 0.01 - 0.004, abs=1e-7)


def test_trace_is_additive_and_decays_by_exp_minus_one_over_tau() -> None:
    rule = get_rule("stdp")
    params = rule.Params(tau_pre=10.0)
    state = rule.init_state(1, 1, params, backend="numba")
    w = np.full((1, 1), 0.5, np.float32)
    rule.step(np.array([[1], [1], [0]]), np.zeros((3, 1)), w, state, params)
    decay = np.exp(-0.1)
    assert state.x_pre[0] == pytest.approx((1 + decay) * decay, rel=1e-6)


def norse_run(pre, post, w_pre_major, tau, eta_plus, eta_minus, algorithm):
    """Norse's stdp_step_linear over the same spikes (weights are post-major there)."""
    from norse.torch.functional.stdp import STDPParameters, STDPState, stdp_step_linear

    n_pre, n_post = w_pre_major.shape
    p = STDPParameters(
        a_pre=torch.tensor(1.0),
        a_post=torch.tensor(1.0),
        tau_pre_inv=torch.tensor(1.0 / tau),
        tau_post_inv=torch.tensor(1.0 / tau),
        w_min=0.0,
        w_max=1.0,
        eta_plus=eta_plus,
        eta_minus=eta_minus,
        stdp_algorithm=algorithm,
        hardbound=True,
    )
    state = STDPState(t_pre=torch.zeros(1, n_pre), t_post=torch.zeros(1, n_post))
    w = torch.tensor(w_pre_major.T.copy())
    for t in range(pre.shape[0]):
        z_pre = torch.tensor(pre[t : t + 1], dtype=torch.float32)
        z_post = torch.tensor(post[t : t + 1], dtype=torch.float32)
        w, state = stdp_step_linear(z_pre, z_post, w, state, p, dt=1.0)
    return w.numpy().T


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("algorithm", "dependence"),
    [("additive", "additive"), ("multiplicative_relu", "multiplicative")],
)
def test_pair_stdp_agrees_with_norse(backend: str, algorithm: str, dependence: str) -> None:
    """Norse integrates traces by Euler steps (decay 1 - dt/tau, height dt/tau per spike);
    mapped to our convention it gives the same weights on the same spikes."""
    rng = np.random.default_rng(7)
    steps, n_pre, n_post, tau_norse = 200, 9, 6, 8.0
    pre = rng.random((steps, n_pre)) < 0.2
    post = rng.random((steps, n_post)) < 0.2
    w0 = rng.uniform(0.3, 0.7, (n_pre, n_post)).astype(np.float32)
    eta_plus, eta_minus = 0.05, 0.06
    expected = norse_run(pre, post, w0, tau_norse, eta_plus, eta_minus, algorithm)
    tau = tau_from_euler(tau_norse)
    assert decay_factor(tau) == pytest.approx(1 - 1 / tau_norse, abs=1e-7)
    height = 1.0 / tau_norse  # Norse's trace = ours x dt/tau
    params = get_rule("stdp").Params(
        tau_pre=tau,
        tau_post=tau,
        a_plus=eta_plus * height,
        a_minus=eta_minus * height,
        weight_dependence=dependence,
        max_step_update=1.0,
    )
    ours = run_stdp(params, pre, post, w0, backend)
    assert np.abs(ours - w0).max() > 0.05  # the comparison is not vacuous
    np.testing.assert_allclose(ours, expected, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_update_is_capped_per_synapse(backend: str) -> None:
    """max_step_update bounds |dw| of every synapse in every step (L-inf norm)."""
    params = get_rule("stdp").Params(a_plus=0.5, a_minus=0.0, max_step_update=0.01, w_max=10.0)
    pre = np.array([[1], [0]], bool)
    post = np.array([[0], [1]], bool)
    w = run_stdp(params, pre, post, np.zeros((1, 1), np.float32), backend)
    assert w[0, 0] == pytest.approx(0.01)


@pytest.mark.parametrize("backend", BACKENDS)
def test_multiplicative_updates_vanish_at_the_bounds(backend: str) -> None:
    params = get_rule("stdp").Params(weight_dependence="multiplicative", a_plus=0.5, a_minus=0.3)
    pre = np.array([[1, 0], [0, 1]], bool)
    post = np.array([[0, 1], [1, 0]], bool)
    w0 = np.array([[1.0, 0.5], [0.5, 0.0]], np.float32)
    w = run_stdp(params, pre, post, w0, backend)
    assert w[0, 0] == 1.0  # causal pair at w_max: LTP factor (w_max - w) = 0
    assert w[1, 1] == 0.0  # anti-causal pair at w_min: LTD factor (w - w_min) = 0
    assert w[0, 1] != 0.5 and w[1, 0] != 0.5  # away from the bounds, they do change
