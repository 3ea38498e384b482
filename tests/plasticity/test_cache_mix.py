"""The neural-cache interpolation (`cache_mix`): a proper mixture, bounded damage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plastic.errors import ConfigError
from plastic.kernels_numba.adapter_kernels import mix_cache
from plastic.models.generate import Conversation
from plastic.plasticity import AdapterConfig
from tests.plasticity.conftest import CONTROL, FACT, chat_turn, make_plastic


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - x.max())
    return e / e.sum()


@pytest.mark.parametrize(("power", "doubt_power"), [(0.0, 0.0), (1.0, 0.0), (2.5, 0.0), (2.5, 1.0)])
def test_the_mix_is_the_interpolated_distribution(power: float, doubt_power: float) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=20).astype(np.float32)
    scores = (3 * rng.normal(size=20)).astype(np.float32)
    lam = 0.2 * (_softmax(scores).max() ** power if power > 0 else 1.0)
    lam *= (1 - _softmax(logits).max()) ** doubt_power
    expected = (1 - lam) * _softmax(logits) + lam * _softmax(scores)
    out = logits.copy()
    assert mix_cache(out, scores, 0.2, power, doubt_power) == pytest.approx(lam)
    np.testing.assert_allclose(_softmax(out), expected, rtol=1e-5)
    # every token keeps (1 - lam) of its probability: at most -log2(1 - lam) bits lost
    assert np.all(-np.log2(_softmax(out) / _softmax(logits)) <= -math.log2(1 - lam) + 1e-5)


@pytest.mark.parametrize("bad", [-0.1, 1.0, math.nan])
def test_bad_cache_mix_is_a_config_error(bad: float) -> None:
    with pytest.raises(ConfigError, match="cache_mix"):
        AdapterConfig(kind_params={"cache_mix": bad})


@pytest.mark.parametrize("bad", [0.0, -1.0, 9.0, math.inf, math.nan])
def test_bad_confidence_power_is_a_config_error(bad: float) -> None:
    with pytest.raises(ConfigError, match="confidence_power"):
        AdapterConfig(kind_params={"confidence_power": bad})


def test_the_mix_keeps_out_where_the_backbone_is_sure() -> None:
    """doubt_power r: l x (1 - max p)^r, so a sure backbone (max p -> 1) is left alone."""
    scores = np.zeros(8, np.float32)
    scores[3] = 20.0  # a confident memory
    sure = np.full(8, -30.0, np.float32)
    sure[0] = 0.0
    unsure = np.zeros(8, np.float32)
    assert mix_cache(sure.copy(), scores, 0.25, 2.5, 1.0) < 1e-9
    assert mix_cache(unsure.copy(), scores, 0.25, 2.5, 1.0) == pytest.approx(0.25 * 7 / 8)
    assert mix_cache(sure.copy(), scores, 0.25, 2.5, 0.0) == pytest.approx(0.25)


@pytest.mark.parametrize("bad", [-0.5, 9.0, math.nan])
def test_a_bad_mix_exponent_is_a_config_error(bad: float) -> None:
    with pytest.raises(ConfigError, match="mix_doubt_power"):
        AdapterConfig(kind_params={"mix_doubt_power": bad})


def test_a_mixing_adapter_learns_and_bounds_its_damage() -> None:
    lam = 0.1
    model = make_plastic(AdapterConfig(kind_params={"cache_mix": lam}))
    before, fact_before = model.engine.score(CONTROL), model.engine.score(FACT)
    conv = Conversation(model, seed=0)
    for _ in range(3):
        chat_turn(model, conv, FACT)
    assert model.engine.score(CONTROL) <= before - math.log2(1 - lam) + 1e-4
    assert model.engine.score(FACT) < fact_before  # it learnt the fact
