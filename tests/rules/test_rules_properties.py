"""Property-based tests (hypothesis): bounds, zero modulation, state save/load round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from plastic.rules import get_rule

BACKENDS = ["torch", "numba"]
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


@st.composite
def layer_runs(draw: st.DrawFn, rule_name: str) -> dict:
    """A random layer, parameter set, spike trains, rewards and initial weights."""
    n_pre = draw(st.integers(1, 9))
    n_post = draw(st.integers(1, 9))
    steps = draw(st.integers(1, 90))
    seed = draw(st.integers(0, 2**31))
    w_min = draw(st.floats(-2.0, 0.5))
    w_max = w_min + draw(st.floats(0.01, 3.0))
    settings_ = {"w_min": w_min, "w_max": w_max}
    if rule_name in ("stdp", "rstdp"):
        settings_["a_plus"] = draw(st.floats(0.0, 2.0))
        settings_["a_minus"] = draw(st.floats(0.0, 2.0))
        settings_["weight_dependence"] = draw(st.sampled_from(["additive", "multiplicative"]))
        settings_["tau_pre"] = draw(st.floats(0.5, 50.0))
    if rule_name == "stdp":
        settings_["max_step_update"] = draw(st.floats(0.001, 5.0))
    else:
        settings_["learning_rate"] = draw(st.floats(0.0, 5.0))
        settings_["max_update_norm"] = draw(st.floats(0.01, 100.0))
    if rule_name == "rstdp":
        settings_["tau_eligibility"] = draw(st.floats(0.01, 300.0))
    if rule_name == "hebb":
        settings_["update_interval"] = draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    p_pre, p_post = draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 1.0))
    return {
        "params": get_rule(rule_name).params_from_dict(settings_),
        "pre": rng.random((steps, n_pre)) < p_pre,
        "post": rng.random((steps, n_post)) < p_post,
        "rewards": rng.uniform(-50.0, 50.0, size=steps),
        "weights": rng.uniform(w_min, w_max, (n_pre, n_post)).astype(np.float32),
        "mask": (rng.random((n_pre, n_post)) < 0.7) if draw(st.booleans()) else None,
        "chunk": draw(st.integers(1, 12)),
    }


def run(rule_name: str, backend: str, case: dict, state=None, weights=None):
    """Steps in chunks with a reward after each; returns (weights, state), flushed."""
    rule = get_rule(rule_name)
    params = case["params"]
    w = case["weights"].copy() if weights is None else weights
    if state is None:
        state = rule.init_state(*w.shape, params, backend=backend, mask=case["mask"])
    for index, start in enumerate(range(0, case["pre"].shape[0], case["chunk"])):
        stop = start + case["chunk"]
        w, state = rule.step(case["pre"][start:stop], case["post"][start:stop], w, state, params)
        reward = case["rewards"][index % len(case["rewards"])]
        w, state = rule.apply_reward(reward, w, state, params)
    return rule.flush(w, state, params)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule_name", ["stdp", "rstdp", "hebb"])
def test_weights_never_leave_their_bounds(rule_name: str, backend: str) -> None:
    @PROPERTY_SETTINGS
    @given(case=layer_runs(rule_name))
    def check(case: dict) -> None:
        w, _ = run(rule_name, backend, case)
        params = case["params"]
        assert np.all(np.isfinite(w))
        assert w.min() >= np.float32(params.w_min)
        assert w.max() <= np.float32(params.w_max)
        if case["mask"] is not None:
            np.testing.assert_array_equal(w[~case["mask"]], case["weights"][~case["mask"]])

    check()


def current_baseline(state) -> float:
    return float(state.baseline) if isinstance(state.baseline, float) else float(state.baseline[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_rstdp_reward_equal_to_baseline_changes_no_weight(backend: str) -> None:
    @PROPERTY_SETTINGS
    @given(case=layer_runs("rstdp"), extra_steps=st.integers(1, 20))
    def check(case: dict, extra_steps: int) -> None:
        rule = get_rule("rstdp")
        w, state = run("rstdp", backend, case)
        rng = np.random.default_rng(extra_steps)
        pre = rng.random((extra_steps, w.shape[0])) < 0.5
        post = rng.random((extra_steps, w.shape[1])) < 0.5
        w, state = rule.step(pre, post, w, state, case["params"])
        before = w.copy()
        w, state = rule.apply_reward(current_baseline(state), w, state, case["params"])
        np.testing.assert_array_equal(w, before)

    check()


def roundtrip(rule_name: str, state, backend: str):
    """state -> dict of arrays -> safetensors bytes -> dict -> state on `backend`."""
    rule = get_rule(rule_name)
    data = rule.state_to_dict(state)
    loaded = load_safetensors(
        save_safetensors({k: np.ascontiguousarray(v) for k, v in data.items()})
    )
    return rule.state_from_dict(loaded, backend=backend), data


@pytest.mark.parametrize("rule_name", ["stdp", "rstdp", "hebb"])
@pytest.mark.parametrize(
    ("saved_on", "loaded_on"),
    [("numba", "numba"), ("torch", "torch"), ("numba", "torch"), ("torch", "numba")],
)
def test_state_round_trips_through_save_and_load(rule_name: str, saved_on: str, loaded_on: str):
    @PROPERTY_SETTINGS
    @given(first=layer_runs(rule_name), cut=st.integers(1, 40))
    def check(first: dict, cut: int) -> None:
        rule = get_rule(rule_name)
        w, state = run(rule_name, saved_on, first)
        restored, saved = roundtrip(rule_name, state, loaded_on)
        again = rule.state_to_dict(restored)
        assert sorted(again) == sorted(saved)
        for key in saved:
            np.testing.assert_array_equal(again[key], saved[key])
        # the restored state continues exactly like the one that was saved
        rng = np.random.default_rng(cut)
        more = dict(
            first, pre=rng.random((cut, w.shape[0])) < 0.4, post=rng.random((cut, w.shape[1])) < 0.4
        )
        w_saved, state_saved = run(rule_name, saved_on, more, state=state, weights=w.copy())
        w_loaded, state_loaded = run(rule_name, loaded_on, more, state=restored, weights=w.copy())
        tolerance = 0.0 if saved_on == loaded_on else 1e-5
        np.testing.assert_allclose(w_loaded, w_saved, rtol=tolerance, atol=tolerance)
        a, b = rule.state_to_dict(state_saved), rule.state_to_dict(state_loaded)
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=tolerance, atol=tolerance)

    check()
