"""Each rule learns what its paper says it learns, on every CPU backend."""

from __future__ import annotations

import numpy as np
import pytest

from plastic.rules import get_rule

BACKENDS = ["torch", "numba"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dependence", ["additive", "multiplicative"])
def test_stdp_strengthens_causal_and_weakens_anti_causal_pairs(backend: str, dependence: str):
    """Pre 0 fires 3 steps before post 0 (causal); pre 1 fires 3 steps after post 1."""
    rule = get_rule("stdp")
    params = rule.Params(weight_dependence=dependence, a_plus=0.02, a_minus=0.02)
    steps = 400
    pre = np.zeros((steps, 2), bool)
    post = np.zeros((steps, 2), bool)
    pre[10::20, 0] = True
    post[13::20, 0] = True
    post[10::20, 1] = True
    pre[13::20, 1] = True
    w = np.full((2, 2), 0.5, np.float32)
    state = rule.init_state(2, 2, params, backend=backend)
    w, state = rule.step(pre, post, w, state, params)
    w, state = rule.flush(w, state, params)
    assert w[0, 0] > 0.55, "causal pairs must potentiate"
    assert w[1, 1] < 0.45, "anti-causal pairs must depress"


def pairing_task(backend: str, seed: int, **overrides) -> np.ndarray:
    """Izhikevich (2007)-style distal reward: random spikes in an 8 x 8 layer; every 10
    steps the reward counts the causal pairings pre 0 -> post 0 (post 1-3 steps after)."""
    rule = get_rule("rstdp")
    settings = dict(w_min=0.0, w_max=1.0, learning_rate=0.01, tau_eligibility=20.0)
    settings.update(tau_pre=3.0, tau_post=3.0, baseline_tau=20.0, **overrides)
    params = rule.Params(**settings)
    rng = np.random.default_rng(seed)
    n, steps, chunk = 8, 8000, 10
    pre = rng.random((steps, n)) < 0.1
    post = rng.random((steps, n)) < 0.1
    later = post[1:-2, 0] | post[2:-1, 0] | post[3:, 0]
    causal = np.concatenate([pre[:-3, 0] & later, np.zeros(3, bool)])
    w = np.full((n, n), 0.5, np.float32)
    state = rule.init_state(n, n, params, backend=backend)
    for start in range(0, steps, chunk):
        w, state = rule.step(
            pre[start : start + chunk], post[start : start + chunk], w, state, params
        )
        reward = float(causal[start : start + chunk].sum())
        w, state = rule.apply_reward(reward, w, state, params)
    return w


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_rstdp_learns_the_rewarded_association(backend: str, seed: int) -> None:
    w = pairing_task(backend, seed)
    others = np.delete(w.ravel(), 0)
    assert w[0, 0] > others.max() + 0.1, "the rewarded synapse must become the strongest"
    assert abs(others.mean() - 0.5) < 0.1, "unrewarded synapses must not drift"


def test_rstdp_without_reward_correlation_learns_nothing_specific() -> None:
    """Control for the test above: a reward that ignores the pairings does not single out
    synapse (0, 0), so the test above cannot pass by accident."""
    rule = get_rule("rstdp")
    params = rule.Params(w_min=0.0, w_max=1.0, learning_rate=0.01, tau_pre=3.0, tau_post=3.0)
    rng = np.random.default_rng(0)
    n, steps = 8, 8000
    pre = rng.random((steps, n)) < 0.1
    post = rng.random((steps, n)) < 0.1
    w = np.full((n, n), 0.5, np.float32)
    state = rule.init_state(n, n, params, backend="numba")
    for start in range(0, steps, 10):
        w, state = rule.step(pre[start : start + 10], post[start : start + 10], w, state, params)
        w, state = rule.apply_reward(float(rng.poisson(0.3)), w, state, params)
    others = np.delete(w.ravel(), 0)
    assert w[0, 0] < others.max()


def drift_with_constant_reward(baseline_tau: float, backend: str) -> float:
    """Mean weight change under uncorrelated spikes and a constant reward of 1."""
    rule = get_rule("rstdp")
    params = rule.Params(
        w_min=-1.0,
        w_max=1.0,
        a_plus=1.0,
        a_minus=0.5,
        learning_rate=2e-3,
        baseline_tau=baseline_tau,
        max_update_norm=10.0,
    )
    rng = np.random.default_rng(3)
    n, steps = 16, 2000
    pre = rng.random((steps, n)) < 0.1
    post = rng.random((steps, n)) < 0.1
    w = np.zeros((n, n), np.float32)
    state = rule.init_state(n, n, params, backend=backend)
    for start in range(0, steps, 10):
        w, state = rule.step(pre[start : start + 10], post[start : start + 10], w, state, params)
        w, state = rule.apply_reward(1.0, w, state, params)
    return float(np.abs(w).mean())


@pytest.mark.parametrize("backend", BACKENDS)
def test_reward_baseline_stops_unrewarded_drift(backend: str) -> None:
    """Frémaux & Gerstner (2016): with r - b, a constant reward carries no information and
    stops moving the weights; with r alone, potentiation-dominated STDP drifts them."""
    without = drift_with_constant_reward(0.0, backend)
    with_baseline = drift_with_constant_reward(5.0, backend)
    assert without > 0.2
    assert with_baseline < 0.1 * without


@pytest.mark.parametrize("backend", BACKENDS)
def test_mstdp_is_the_short_eligibility_limit(backend: str) -> None:
    """tau_e -> 0 (Florian's MSTDP): a reward right after a step uses that step's STDP only."""
    rule = get_rule("rstdp")
    params = rule.Params(tau_eligibility=1e-3, learning_rate=0.1, baseline_tau=0.0, a_minus=0.5)
    pre = np.array([[1, 0], [0, 0], [0, 1]], bool)
    post = np.array([[0, 0], [1, 0], [1, 0]], bool)
    w = np.zeros((2, 2), np.float32)
    state = rule.init_state(2, 2, params, backend=backend)
    w, state = rule.step(pre, post, w, state, params)
    w, state = rule.apply_reward(1.0, w, state, params)
    decay = np.exp(-1 / params.tau_pre)
    # last step: pre 1 and post 0 spike; x_pre = [decay**2, 1], x_post = [1 + decay, 0]
    expected = np.zeros((2, 2))
    expected[0, 0] = decay**2  # LTP: post 0 with x_pre[0]
    expected[1, 0] = 1.0 - 0.5 * (1.0 + decay)  # LTP (coincident) - LTD by x_post[0]
    np.testing.assert_allclose(w, 0.1 * expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_oja_converges_to_the_principal_component(backend: str) -> None:
    """A linear neuron y = w . x trained with Oja's rule finds the top eigenvector."""
    rule = get_rule("hebb")
    params = rule.Params(tau_rate=1.0, update_interval=1, learning_rate=0.01, max_update_norm=10.0)
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(5, 5))
    covariance = mixing @ np.diag([4.0, 1.0, 0.5, 0.2, 0.1]) @ mixing.T
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    principal = eigenvectors[:, -1]
    inputs = rng.multivariate_normal(np.zeros(5), covariance / eigenvalues[-1], 3000)
    w = (rng.normal(size=(5, 1)) * 0.1).astype(np.float32)
    state = rule.init_state(5, 1, params, backend=backend)
    for x in inputs.astype(np.float32):
        y = x @ w
        w, state = rule.step(x, y, w, state, params)
    found = w[:, 0] / np.linalg.norm(w[:, 0])
    assert abs(found @ principal) > 0.99
    assert np.linalg.norm(w[:, 0]) == pytest.approx(1.0, abs=0.1)
