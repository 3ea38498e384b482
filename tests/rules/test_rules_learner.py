"""`Learner`: the stateful wrapper over the functional rule API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic.errors import RuleError
from plastic.rules import Learner, get_rule


def spikes(seed: int, steps: int, n: int, p: float = 0.2) -> np.ndarray:
    return np.random.default_rng(seed).random((steps, n)) < p


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_learner_on_a_torch_linear_layer_updates_it_in_place(backend: str) -> None:
    """torch Linear stores [out, in] (post-major); the learner works on its transpose."""
    layer = torch.nn.Linear(6, 4, bias=False)
    with torch.no_grad():
        layer.weight.uniform_(0.2, 0.8)
    start = layer.weight.detach().clone()
    learner = Learner.for_module(layer, "stdp", {"a_plus": 0.05}, backend=backend)
    pre, post = spikes(1, 40, 6), spikes(2, 40, 4)
    learner.step(pre, post)
    learner.flush()
    # the same run on an explicit pre-major copy
    rule = get_rule("stdp")
    w = start.T.contiguous().numpy()
    state = rule.init_state(6, 4, learner.params, backend="numba")
    w, state = rule.step(pre, post, w, state, learner.params)
    w, state = rule.flush(w, state, learner.params)
    np.testing.assert_allclose(layer.weight.detach().numpy().T, w, rtol=1e-6)
    assert not torch.equal(layer.weight.detach(), start)


def test_learner_with_numpy_weights_shared_with_torch() -> None:
    weights = np.zeros((5, 3), np.float32)
    view = torch.from_numpy(weights)  # what an adapter's forward pass reads
    learner = Learner("rstdp", weights, {"learning_rate": 0.1})
    learner.step(spikes(3, 20, 5, 0.4), spikes(4, 20, 3, 0.4))
    learner.reward(1.0)
    assert view.abs().max() > 0
    assert learner.weights is weights


def test_flush_every_keeps_weights_exact_for_dense_readers() -> None:
    pre, post = spikes(5, 12, 4, 0.3), spikes(6, 12, 4, 0.6)
    exact = Learner("stdp", np.full((4, 4), 0.5, np.float32), {"a_plus": 0.05}, backend="torch")
    lazy = Learner("stdp", np.full((4, 4), 0.5, np.float32), {"a_plus": 0.05}, flush_every=3)
    for t in range(12):
        exact.step(pre[t], post[t])
        lazy.step(pre[t], post[t])
        if (t + 1) % 3 == 0:
            np.testing.assert_allclose(lazy.weights, exact.weights, rtol=1e-6)


def test_state_dict_round_trip_continues_identically() -> None:
    pre, post = spikes(7, 30, 4, 0.3), spikes(8, 30, 3, 0.3)
    first = Learner("rstdp", np.zeros((4, 3), np.float32), {"learning_rate": 0.05})
    first.step(pre[:15], post[:15])
    first.reward(0.5)
    saved = first.state_dict()
    assert saved["rule"] == "rstdp" and saved["params"]["learning_rate"] == 0.05
    second = Learner("rstdp", first.weights.copy(), backend="torch")
    second.load_state_dict(saved)
    for learner in (first, second):
        learner.step(pre[15:], post[15:])
        learner.reward(-1.0)
    np.testing.assert_allclose(np.asarray(second.weights), first.weights, rtol=1e-5, atol=1e-7)


def test_learner_rejects_bad_inputs() -> None:
    with pytest.raises(RuleError, match="outside"):
        Learner("stdp", np.full((2, 2), 3.0, np.float32))
    with pytest.raises(RuleError, match="float32"):
        Learner("stdp", np.zeros((2, 2), np.float64)).step(np.ones(2), np.ones(2))
    with pytest.raises(RuleError, match="unknown parameter"):
        Learner("stdp", np.zeros((2, 2), np.float32), {"tau": 3.0})
    with pytest.raises(RuleError, match="for rule 'hebb'"):
        Learner("rstdp", np.zeros((2, 2), np.float32)).load_state_dict({"rule": "hebb"})
