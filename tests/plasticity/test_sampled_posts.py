"""Stochastic output spikes (`sampled_posts`): the draw follows the prediction, is seeded,
and stays exact under save/load, /undo and trace replay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plastic.errors import ConfigError
from plastic.models.generate import Conversation
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.plasticity.kernels import sample_tokens
from tests.plasticity.conftest import (
    CONTROL,
    FACT,
    chat_turn,
    make_backbone,
    make_plastic,
    weights_of,
)

SAMPLED = AdapterConfig(sampled_posts=3, seed=5)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_draw_follows_the_softmax() -> None:
    logits = np.array([2.0, 0.0, -1.0, 1.0, -30.0], np.float32)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    uniforms = np.random.default_rng(0).random(40_000)
    out = np.zeros(uniforms.shape[0], np.int64)
    assert sample_tokens(logits, uniforms, out) == uniforms.shape[0]
    freq = np.bincount(out, minlength=5) / out.shape[0]
    assert np.abs(freq - p).max() < 0.01
    assert freq[4] == 0.0  # p ~ 1e-14: never drawn
    # the largest uniform below 1 picks the last token with mass, never past the end
    assert sample_tokens(logits, np.array([1.0 - 1e-12]), out[:1]) == 1 and out[0] == 3


@pytest.mark.parametrize("bad", [-1, 65, 1.5])
def test_bad_sampled_posts_is_a_config_error(bad) -> None:
    with pytest.raises(ConfigError, match="sampled_posts"):
        AdapterConfig(sampled_posts=bad)


def test_sampled_spikes_depress_what_was_predicted_and_depend_on_the_seed() -> None:
    runs = {}
    for name, config in {
        "recall only": AdapterConfig(seed=5),
        "seed 5": SAMPLED,
        "seed 5 again": SAMPLED,
        "seed 6": AdapterConfig(sampled_posts=3, seed=6),
    }.items():
        model = make_plastic(config)
        chat_turn(model, Conversation(model, seed=0), FACT + " " + CONTROL)
        runs[name] = weights_of(model)
    assert _same(runs["seed 5"], runs["seed 5 again"])
    assert not _same(runs["seed 5"], runs["seed 6"])
    # more LTD: the sampled adapter holds more negative weight than the recall-only one
    neg = {k: sum(float(np.minimum(w, 0).sum()) for w in v.values()) for k, v in runs.items()}
    assert neg["seed 5"] < neg["recall only"]


def test_a_loaded_sampling_adapter_keeps_learning_the_same(tmp_path: Path) -> None:
    model = make_plastic(SAMPLED)
    chat_turn(model, Conversation(model, seed=0), FACT)
    model.save(tmp_path / "a")
    loaded = PlasticModel.from_pretrained(make_backbone(), tmp_path / "a")
    for m in (model, loaded):
        chat_turn(m, Conversation(m, seed=1), CONTROL)
    assert _same(weights_of(model), weights_of(loaded))


def test_undo_rewinds_the_sampler() -> None:
    model = make_plastic(SAMPLED)
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, FACT)
    adapter = model.adapters["default"]
    weights, rng = weights_of(model), adapter.rng.bit_generator.state
    chat_turn(model, conv, CONTROL)
    assert adapter.rng.bit_generator.state != rng  # the turn drew spikes
    model.engine.undo()
    assert _same(weights, weights_of(model))
    assert adapter.rng.bit_generator.state == rng  # the next turn draws what this one drew


def test_open_loop_replay_of_a_sampling_adapter_is_exact(tmp_path: Path) -> None:
    from plastic.replay.reader import TraceReader
    from plastic.replay.recorder import TraceRecorder
    from plastic.replay.replay import ReplayOptions, replay

    torch.set_num_threads(1)
    with torch.no_grad():
        model = make_plastic(SAMPLED)
        with TraceRecorder.attach(model, tmp_path / "t.zarr"):
            conv = Conversation(model, seed=0)
            for text in (FACT, CONTROL):
                chat_turn(model, conv, text, reply_tokens=8)
    result = replay(TraceReader(tmp_path / "t.zarr"), ReplayOptions(verify=True))
    assert result.exact and result.max_abs_diff == 0.0
    live = weights_of(model)
    for key, weights in result.weights().items():
        assert np.array_equal(weights, live[key])
