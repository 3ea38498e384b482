"""The Numba CPU kernels agree with the dense torch reference on random and edge-case spikes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic.rules import get_rule
from tests.kernels_numba.helpers import assert_same_run, run_rule, spike_trains

RULE_CASES = {
    "stdp-additive": ("stdp", {}),
    "stdp-multiplicative": (
        "stdp",
        {"weight_dependence": "multiplicative", "a_plus": 0.05, "a_minus": 0.06},
    ),
    "stdp-capped": ("stdp", {"a_plus": 0.02, "a_minus": 0.03, "max_step_update": 0.01}),
    "rstdp-additive": ("rstdp", {"tau_eligibility": 30.0, "learning_rate": 0.01, "a_minus": 1.2}),
    "rstdp-multiplicative": (
        "rstdp",
        {"weight_dependence": "multiplicative", "tau_eligibility": 3.0, "learning_rate": 0.05},
    ),
    "rstdp-capped": ("rstdp", {"learning_rate": 1.0, "a_minus": 1.1, "max_update_norm": 0.05}),
    "hebb": ("hebb", {"update_interval": 3, "tau_rate": 4.0, "learning_rate": 0.05}),
}
REWARDS = [1.0, -0.5, 0.25, 2.0, 0.0, -1.5]
STEPS = 150  # more than the ring's 64 steps, so full syncs happen mid-run


def scenario(kind: str, rng: np.random.Generator) -> dict:
    """Spikes, initial weights and options for one edge case."""
    n_pre, n_post, probability, mask = 23, 31, 0.1, None
    if kind == "one-pre-neuron":
        n_pre, probability = 1, 0.3
    elif kind == "one-post-neuron":
        n_post, probability = 1, 0.3
    elif kind == "silent":
        probability = 0.0
    elif kind == "all-spiking":
        probability = 1.0
    elif kind == "masked":
        mask = rng.random((n_pre, n_post)) < 0.6
    elif kind == "threaded":  # above PARALLEL_MIN_WORK: spiking rows, syncs, rewards in threads
        n_pre, n_post, probability = 160, 512, 0.9
    return {
        "pre": spike_trains(rng, STEPS, n_pre, probability),
        "post": spike_trains(rng, STEPS, n_post, probability),
        "weights": rng.uniform(0.2, 0.8, (n_pre, n_post)).astype(np.float32),
        "mask": mask,
    }


KINDS = [
    "random",
    "silent",
    "all-spiking",
    "one-pre-neuron",
    "one-post-neuron",
    "masked",
    "threaded",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(RULE_CASES))
def test_numba_matches_torch_reference(case: str, kind: str, rng: np.random.Generator) -> None:
    name, overrides = RULE_CASES[case]
    params = get_rule(name).params_from_dict(overrides)
    setup = scenario(kind, rng)
    reference = run_rule(name, params, "torch", rewards=REWARDS, **setup)
    candidate = run_rule(name, params, "numba", rewards=REWARDS, **setup)
    assert_same_run(reference, candidate)
    changed = np.abs(reference[0] - setup["weights"]).max()
    if kind == "silent" and name != "hebb":
        assert changed == 0.0  # no spikes, no STDP, no eligibility: nothing may move
    elif kind != "silent":
        assert changed > 1e-4  # the comparison is not between two untouched matrices
    if setup["mask"] is not None:
        frozen = ~setup["mask"]
        np.testing.assert_array_equal(candidate[0][frozen], setup["weights"][frozen])


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_non_contiguous_inputs(case: str, rng: np.random.Generator) -> None:
    """Strided float spikes, torch bool spikes and transposed (F-order) weights."""
    name, overrides = RULE_CASES[case]
    params = get_rule(name).params_from_dict(overrides)
    n_pre, n_post = 17, 13
    wide_pre = spike_trains(rng, STEPS, 2 * n_pre, 0.15).astype(np.float64)
    post = spike_trains(rng, STEPS, n_post, 0.15)
    storage = rng.uniform(0.2, 0.8, (n_post, n_pre)).astype(np.float32)
    weights = storage.T  # a pre-major view of post-major storage: not C-contiguous
    assert not weights.flags.c_contiguous
    pre = wide_pre[:, ::2]  # every other column: a strided view
    contiguous = run_rule(
        name,
        params,
        "torch",
        np.ascontiguousarray(pre),
        post,
        np.ascontiguousarray(weights),
        rewards=REWARDS,
    )
    for backend in ("torch", "numba"):
        result = run_rule(
            name,
            params,
            backend,
            pre,
            torch.from_numpy(post),
            weights,
            rewards=REWARDS,
            to_weights=lambda a: np.asarray(np.ascontiguousarray(a.T).T),
        )
        assert_same_run(contiguous, result)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_step_batching_does_not_change_results(chunk: int, rng: np.random.Generator) -> None:
    """[T, n] calls and per-step calls give the same run."""
    params = get_rule("rstdp").Params(tau_eligibility=20.0, learning_rate=0.05)
    setup = scenario("random", rng)
    reference = run_rule("rstdp", params, "numba", chunk=STEPS, **setup)
    assert_same_run(reference, run_rule("rstdp", params, "numba", chunk=chunk, **setup))


def test_long_run_with_short_eligibility_stays_finite(rng: np.random.Generator) -> None:
    """1,500 steps with tau_e = 2 steps: a global rescaled-time frame would need
    exp(1500/2) = 1e325 and overflow even float64; the lazy per-row decay does not."""
    params = get_rule("rstdp").Params(tau_eligibility=2.0, learning_rate=0.02)
    setup = scenario("random", rng)
    setup["pre"] = spike_trains(rng, 1500, 23, 0.05)
    setup["post"] = spike_trains(rng, 1500, 31, 0.05)
    reference = run_rule("rstdp", params, "torch", rewards=REWARDS, chunk=50, **setup)
    candidate = run_rule("rstdp", params, "numba", rewards=REWARDS, chunk=50, **setup)
    assert np.all(np.isfinite(candidate[1]["eligibility"]))
    assert_same_run(reference, candidate)
