"""What makes the CPU kernels event-driven, checked through its observable consequences."""

from __future__ import annotations

import numpy as np
import pytest

from plastic.kernels_numba import cpu_rstdp, cpu_stdp
from plastic.kernels_numba.arrays import connectivity_mask
from plastic.kernels_numba.state_layout import new_eligibility_state, new_timing_state
from plastic.rules import get_rule
from tests.kernels_numba.helpers import assert_same_run, run_rule, spike_trains


def test_post_spikes_alone_defer_ltp_until_rows_are_read(rng: np.random.Generator) -> None:
    """Post spikes do not touch the weight columns: LTP waits in the ring until a row is
    brought up to date (its pre neuron spikes, or flush). Flushed weights are exact."""
    rule = get_rule("stdp")
    params = rule.Params(a_plus=0.05)
    n_pre, n_post = 6, 9
    w0 = np.full((n_pre, n_post), 0.5, np.float32)
    pre = np.zeros((5, n_pre), bool)
    pre[0] = True  # every pre trace becomes nonzero
    post = np.zeros((5, n_post), bool)
    post[2:, :3] = True
    w = w0.copy()
    state = rule.init_state(n_pre, n_post, params, backend="numba")
    rule.step(pre[:1], post[:1], w, state, params)
    after_first = w.copy()
    rule.step(pre[1:], post[1:], w, state, params)
    np.testing.assert_array_equal(w, after_first)  # 4 steps of post spikes: nothing written
    reference, _ = run_rule("stdp", params, "torch", pre, post, w0, chunk=5)
    rule.flush(w, state, params, rows=np.array([2]))
    np.testing.assert_allclose(w[2], reference[2], rtol=1e-6)  # the row that was read
    np.testing.assert_array_equal(w[3], after_first[3])  # rows not read are still deferred
    rule.flush(w, state, params)
    np.testing.assert_allclose(w, reference, rtol=1e-6)


def test_flush_rows_accepts_spike_vectors_and_indices(rng: np.random.Generator) -> None:
    rule = get_rule("stdp")
    params = rule.Params(a_plus=0.05)
    pre = spike_trains(rng, 30, 8, 0.2)
    post = spike_trains(rng, 30, 5, 0.5)
    w0 = np.full((8, 5), 0.5, np.float32)
    reference, _ = run_rule("stdp", params, "torch", pre, post, w0)
    for rows in (
        np.arange(8) % 2 == 0,
        np.array([0, 2, 4, 6]),
        np.array([1, 0, 1, 0, 1, 0, 1, 0], np.uint8),
    ):
        w = w0.copy()
        state = rule.init_state(8, 5, params, backend="numba")
        rule.step(pre, post, w, state, params)
        rule.flush(w, state, params, rows=rows)
        np.testing.assert_allclose(w[::2], reference[::2], rtol=1e-6)


def test_eligibility_rows_of_silent_pre_neurons_are_not_touched() -> None:
    """A step only writes the eligibility rows of spiking pre neurons (lazy decay)."""
    params = get_rule("rstdp").Params()
    coef = get_rule("rstdp").kernel_coefficients(params)
    state = new_eligibility_state(4, 3, connectivity_mask(None, 4, 3))
    w = np.zeros((4, 3), np.float32)
    pre = np.array([[1, 1, 1, 1], [0, 1, 0, 0], [0, 1, 0, 0]], np.uint8)
    post = np.ones((3, 3), np.uint8)
    cpu_rstdp.step(pre[:1], post[:1], w, state, coef)
    snapshot = state.eligibility.copy()
    cpu_rstdp.step(pre[1:], post[1:], w, state, coef)
    untouched = [0, 2, 3]
    np.testing.assert_array_equal(state.eligibility[untouched], snapshot[untouched])
    assert list(state.timing.row_step) == [1, 3, 1, 1]


@pytest.mark.parametrize("name", ["stdp", "rstdp"])
def test_ring_wrap_forces_a_full_sync(name: str, rng: np.random.Generator) -> None:
    """With a 4-step ring, every 4th step brings all rows up to date; results stay exact."""
    rule = get_rule(name)
    params = rule.Params(a_plus=0.05) if name == "stdp" else rule.Params(tau_eligibility=7.0)
    coef = rule.kernel_coefficients(params)
    n_pre, n_post, steps = 7, 5, 41
    pre = spike_trains(rng, steps, n_pre, 0.1)
    post = spike_trains(rng, steps, n_post, 0.4)
    w0 = rng.uniform(0.2, 0.8, (n_pre, n_post)).astype(np.float32)
    mask = connectivity_mask(None, n_pre, n_post)
    if name == "stdp":
        state = new_timing_state(n_pre, n_post, mask, ring_steps=4)
        kernels, timing = cpu_stdp, state
    else:
        state = new_eligibility_state(n_pre, n_post, mask, ring_steps=4)
        kernels, timing = cpu_rstdp, state.timing
    w = w0.copy()
    for t in range(steps):
        kernels.step(pre[t], post[t], w, state, coef)
        assert timing.clock[0] - timing.row_step.min() < 4  # never more than the ring holds
    assert timing.clock[1] == 40  # the last full sync, at a multiple of the ring
    kernels.flush(w, state, coef)
    reference = run_rule(name, params, "torch", pre, post, w0, chunk=steps)
    assert_same_run(reference, (w, rule.state_to_dict(state)))


def test_saving_a_state_with_deferred_work_is_refused() -> None:
    from plastic.errors import RuleError

    rule = get_rule("stdp")
    params = rule.Params()
    w = np.full((3, 3), 0.5, np.float32)
    state = rule.init_state(3, 3, params)
    rule.step(np.array([1, 0, 0]), np.array([0, 1, 0]), w, state, params)
    rule.step(np.array([0, 0, 0]), np.array([0, 1, 0]), w, state, params)
    with pytest.raises(RuleError, match="flush"):
        rule.state_to_dict(state)
    rule.flush(w, state, params)
    assert rule.state_to_dict(state)["step"][0] == 2


def test_rewards_leave_no_deferred_weight_updates(rng: np.random.Generator) -> None:
    """rstdp weights are exact right after apply_reward, without any flush."""
    rule = get_rule("rstdp")
    params = rule.Params(learning_rate=0.05, tau_eligibility=15.0)
    pre = spike_trains(rng, 30, 6, 0.3)
    post = spike_trains(rng, 30, 4, 0.3)
    w0 = np.zeros((6, 4), np.float32)
    results = {}
    for backend in ("torch", "numba"):
        w = w0.copy()
        state = rule.init_state(6, 4, params, backend=backend)
        w, state = rule.step(pre, post, w, state, params)
        w, state = rule.apply_reward(1.0, w, state, params)
        results[backend] = np.array(w, copy=True)
    np.testing.assert_allclose(results["numba"], results["torch"], rtol=1e-5, atol=1e-7)
    assert np.abs(results["numba"]).max() > 1e-3
