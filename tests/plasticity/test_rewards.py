"""Reward plugins: surprise, feedback, callback, and their registry."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from plastic.errors import ConfigError
from plastic.models.generate import Conversation
from plastic.plasticity import (
    AdapterConfig,
    callback_reward,
    get_reward,
    register_reward,
    reward_names,
    unregister_reward,
)
from plastic.plasticity.rewards import feedback, surprise
from plastic.plasticity.rewards.protocol import (
    GENERATE,
    OBSERVE,
    TokenEvent,
    TokenHistory,
    protocol_problems,
)
from plastic.plasticity.rewards.registry import BUILTIN_REWARDS, ENTRY_POINT_GROUP
from plastic.plugins import PluginRegistry
from plastic.rules.registry import DISABLE_AUTOLOAD_ENV
from tests.plasticity.conftest import FACT, chat_turn, make_plastic, weights_of

HISTORY = TokenHistory()


def _event(bits: float, phase: str = OBSERVE, token: int = 65) -> TokenEvent:
    return TokenEvent(token, 2.0**-bits, bits, phase, 0, HISTORY)


def _warm(params, bits_seq=(3.0, 5.0) * 20):
    state = surprise.init_state(params)
    for bits in bits_seq:
        _, state = surprise.on_token(_event(bits), state, params)
    return state


def test_surprise_rewards_harder_than_usual_tokens() -> None:
    params = surprise.Params()
    state = _warm(params)
    hard, _ = surprise.on_token(_event(9.0), state, params)
    easy, _ = surprise.on_token(_event(1.5), state, params)
    assert hard is not None and hard > 0
    assert easy is None  # floor 0: less surprising than usual gives no reward event


def test_surprise_sign_is_a_parameter() -> None:
    params = surprise.Params(sign=-1.0)
    state = _warm(params)
    hard, _ = surprise.on_token(_event(9.0), state, params)
    easy, _ = surprise.on_token(_event(1.5), state, params)
    assert hard is None and easy is not None and easy > 0


def test_surprise_floor_and_clip() -> None:
    params = surprise.Params(floor=-math.inf, clip=2.0, min_bits=0.0)
    state = _warm(params)
    easy, _ = surprise.on_token(_event(0.5), state, params)
    huge, _ = surprise.on_token(_event(1e3), state, params)
    assert easy is not None and easy < 0
    assert huge == pytest.approx(2.0)


def test_surprise_ignores_generated_tokens_and_warms_up() -> None:
    params = surprise.Params(warmup=5)
    state = surprise.init_state(params)
    for _ in range(5):
        reward, state = surprise.on_token(_event(30.0), state, params)
        assert reward is None
    generated, same = surprise.on_token(_event(30.0, GENERATE), state, params)
    assert generated is None and same == state
    reward, _ = surprise.on_token(_event(60.0), state, params)
    assert reward is not None and reward > 0


def test_surprise_state_round_trips() -> None:
    params = surprise.Params()
    state = _warm(params)
    again = surprise.state_from_dict(surprise.state_to_dict(state))
    assert again == state


def test_bad_surprise_params_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        surprise.params_from_dict({"sign": 0.5})
    with pytest.raises(ConfigError):
        surprise.params_from_dict({"nonsense": 1})


def test_feedback_credits_a_reply_once() -> None:
    params = feedback.Params(scale=2.0)
    state = feedback.init_state(params)
    reward, state = feedback.on_feedback(1.0, state, params)
    assert reward is None  # no reply yet
    _, state = feedback.on_token(_event(3.0, GENERATE), state, params)
    reward, state = feedback.on_feedback(1.0, state, params)
    assert reward == 2.0
    again, state = feedback.on_feedback(-1.0, state, params)
    assert again is None
    _, state = feedback.on_token(_event(3.0, GENERATE), state, params)
    _, state = feedback.on_token(_event(3.0, OBSERVE), state, params)  # the next user turn
    late, _ = feedback.on_feedback(-1.0, state, params)
    assert late is None


def test_callback_rewards_are_plain_floats() -> None:
    seen = []

    def fn(token, prob, event):
        seen.append((token, prob, event.phase))
        return torch.tensor(0.5, requires_grad=True) * 2  # a tensor with a graph

    source = callback_reward(fn, name="cb")
    assert protocol_problems(source) == []
    state = source.init_state(source.Params())
    reward, state = source.on_token(_event(2.0), state, source.Params())
    assert reward == 1.0 and type(reward) is float
    generated, _ = source.on_token(_event(2.0, GENERATE), state, source.Params())
    assert generated is None and len(seen) == 1  # observed tokens only by default
    bad = callback_reward(lambda *a: float("nan"), name="bad")
    with pytest.raises(ConfigError, match="returned nan"):
        bad.on_token(_event(2.0), bad.init_state(bad.Params()), bad.Params())


def test_registry_lists_builtins_without_importing() -> None:
    assert {"surprise", "feedback"} <= set(reward_names())
    assert get_reward("surprise") is surprise
    with pytest.raises(ConfigError, match="unknown reward source 'nope'"):
        get_reward("nope")


def test_in_process_registration_and_its_rules() -> None:
    source = callback_reward(lambda *a: 1.0, name="mine")
    register_reward(source)
    try:
        assert get_reward("mine") is source
        assert "mine" in reward_names()
        with pytest.raises(ConfigError, match="already registered"):
            register_reward(callback_reward(lambda *a: 2.0, name="mine"))
        with pytest.raises(ConfigError, match="built-in"):
            register_reward(callback_reward(lambda *a: 2.0, name="surprise"))
        with pytest.raises(ConfigError, match="missing attribute"):
            register_reward(SimpleNamespace(name="broken"))
    finally:
        unregister_reward("mine")
    with pytest.raises(ConfigError):
        get_reward("mine")


def test_a_registered_reward_drives_learning() -> None:
    calls = []

    def fn(token, prob, event):
        calls.append(token)
        return 1.0 if token == ord("Q") else None

    register_reward(callback_reward(fn, name="likes_q"))
    try:
        model = make_plastic(AdapterConfig(reward=("likes_q",)))
        chat_turn(model, Conversation(model, seed=0), FACT)
    finally:
        unregister_reward("likes_q")
    assert len(calls) >= len(FACT)
    counters = model.adapters["default"].counters
    assert counters.rewards_applied == FACT.count("Q")
    assert any(np.any(w) for w in weights_of(model).values())


def test_unknown_reward_names_fail_at_attach() -> None:
    with pytest.raises(ConfigError, match="unknown reward source"):
        make_plastic(AdapterConfig(reward=("no_such_reward",)))


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, obj) -> None:
        self.name, self.value, self._obj = name, value, obj
        self.dist = SimpleNamespace(name="fakepkg", version="1.0")
        self.loaded = False

    def load(self):
        self.loaded = True
        return self._obj


def test_entry_point_plugins_load_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    from plastic import plugins
    from plastic.plasticity.rewards import protocol as reward_protocol

    plugin = callback_reward(lambda *a: 1.0, name="fromep")
    ep = _FakeEntryPoint("fromep", "fakepkg.rewards:fromep", plugin)
    monkeypatch.setattr(
        plugins.metadata, "entry_points", lambda group: [ep] if group == ENTRY_POINT_GROUP else []
    )
    registry = PluginRegistry(
        "reward source", ENTRY_POINT_GROUP, BUILTIN_REWARDS,
        reward_protocol.protocol_problems, ConfigError,
    )  # fmt: skip
    assert "fromep" in registry.names() and not ep.loaded
    assert registry.sources()["fromep"].origin == "fakepkg 1.0"
    assert registry.get("fromep") is plugin and ep.loaded
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    registry.refresh()
    assert "fromep" not in registry.names()


def test_a_broken_plugin_is_an_error_only_when_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    from plastic import plugins
    from plastic.plasticity.rewards import protocol as reward_protocol

    ep = _FakeEntryPoint("broken", "fakepkg:broken", SimpleNamespace(name="broken"))
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [ep])
    registry = PluginRegistry(
        "reward source", ENTRY_POINT_GROUP, {}, reward_protocol.protocol_problems, ConfigError
    )
    assert registry.names() == ["broken"]
    with pytest.raises(ConfigError, match="not a valid plastic reward source"):
        registry.get("broken")


def test_token_history_keeps_the_latest_tokens() -> None:
    history = TokenHistory(capacity=4)
    for token in range(10):
        history.push(token)
    assert history.recent() == [6, 7, 8, 9] and history.recent(2) == [8, 9]
    history.clear()
    assert history.recent() == []
