"""The learning engine: teach and probe, undo, the per-turn cap, the drift guard, feedback."""

from __future__ import annotations

import numpy as np
import pytest

from plastic.models.generate import Conversation
from plastic.plasticity import (
    AdapterConfig,
    GuardConfig,
    callback_reward,
    register_reward,
    unregister_reward,
)
from tests.plasticity.conftest import (
    CONTROL,
    FACT,
    assert_within_bounds,
    chat_turn,
    make_plastic,
    weights_of,
)


def _state_arrays(model) -> dict[str, np.ndarray]:
    out = {}
    for name, adapter in model.adapters.items():
        for site, layer in adapter.layers.items():
            out[f"{name}/{site}/weights"] = layer.synapses.snapshot().weights
            for key, value in layer.synapses.state_arrays().items():
                out[f"{name}/{site}/rule/{key}"] = value
        for key, value in adapter.rewards.state_arrays().items():
            out[f"{name}/reward/{key}"] = value
    return out


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


@pytest.mark.parametrize("learning", [True, False])
def test_teach_and_probe(learning: bool) -> None:
    """A made-up fact repeated in user turns is learnt (and only with learning on)."""
    model = make_plastic()
    engine = model.engine
    model.learning = learning
    fact_before, control_before = engine.score(FACT), engine.score(CONTROL)
    conv = Conversation(model, seed=0)
    for _ in range(4):
        report = chat_turn(model, conv, f"Remember: {FACT}")
        assert not report.reverted
    fact_after, control_after = engine.score(FACT), engine.score(CONTROL)
    if not learning:
        assert fact_after == fact_before and control_after == control_before
        return
    fact_gain, control_gain = fact_before - fact_after, control_before - control_after
    # 0.19 b/B on this random backbone with the confidence-powered mix (0.34 with the
    # additive readout): the mix only moves bytes the memory is confident about
    assert fact_gain > 0.1, (fact_before, fact_after)
    # specific to the fact: the control gains too (0.13 b/B: on a random backbone, any
    # English byte pairs the memory holds help any English text), but clearly less
    assert fact_gain > 1.3 * control_gain, (fact_gain, control_gain)
    probe = engine.probe_score()
    assert probe <= engine.probe_reference() + model.guards.drift_margin


def test_score_neither_learns_nor_moves_the_conversation() -> None:
    model = make_plastic()
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, FACT)
    before, cursor = _state_arrays(model), conv.snapshot()
    first = model.engine.score(FACT)
    assert model.engine.score(FACT) == first
    _assert_same(before, _state_arrays(model))
    assert conv.snapshot() is cursor


def test_undo_restores_bit_identical_weights_and_states() -> None:
    model = make_plastic()
    engine = model.engine
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, FACT)
    after_one = _state_arrays(model)
    chat_turn(model, conv, "Another fact: the moon of Quimby is made of slate.")
    assert any(not np.array_equal(after_one[k], v) for k, v in _state_arrays(model).items())
    assert engine.can_undo == 2
    event = engine.undo()
    assert event.message.startswith("undid turn 2:") and "1 more can be undone" in event.message
    _assert_same(after_one, _state_arrays(model))
    assert engine.undo().message.startswith("undid turn 1:")  # each undo names its own turn
    assert all(not np.any(w) for w in weights_of(model).values())  # back to W = 0
    assert engine.undo().message == "nothing to undo"


def test_the_per_turn_update_cap() -> None:
    limit = 0.05
    model = make_plastic(guards=GuardConfig(max_turn_update=limit, drift_check=False))
    conv = Conversation(model, seed=0)
    report = chat_turn(model, conv, FACT + " " + FACT)
    (norm,) = report.change_norm.values()
    assert 0 < norm <= limit * (1 + 1e-5)
    assert any(e.kind == "cap" for e in report.events)
    assert "update cap" in model.engine.status()["guard"]
    loose = make_plastic(guards=GuardConfig(max_turn_update=1e3, drift_check=False))
    report = chat_turn(loose, Conversation(loose, seed=0), FACT + " " + FACT)
    assert next(iter(report.change_norm.values())) > limit  # the cap is what held it
    assert not any(e.kind == "cap" for e in report.events)


@pytest.fixture
def always_reward():
    """A harmful reward: +3 for every observed token (teaches whatever comes, hard)."""
    register_reward(callback_reward(lambda token, prob, event: 3.0, name="always"), replace=True)
    yield
    unregister_reward("always")


# additive (cache_mix 0): the probability mix bounds what any memory costs the probe to
# -log2(1 - cache_mix) bits/byte, so the harm the guard must catch needs the additive readout;
# and no context gate, which would keep a memory of "zzz..." quiet on the probe's text
HARMFUL = AdapterConfig(
    reward=("always",),
    rule_params={"learning_rate": 1.0},
    kind_params={"sharpness": 1.0, "scale": 8.0, "cache_mix": 0.0, "context_tau": 0.0},
)


@pytest.mark.usefixtures("always_reward")
@pytest.mark.parametrize("backoff", [0, 2])
def test_the_drift_guard_keeps_the_probe_within_its_margin(backoff: int) -> None:
    guards = GuardConfig(drift_margin=0.02, max_turn_update=1e3, drift_backoff=backoff)
    model = make_plastic(HARMFUL, guards=guards)
    engine = model.engine
    reference = engine.probe_reference()
    conv = Conversation(model, seed=0)
    report = chat_turn(model, conv, "z" * 400)
    assert any(e.kind == "drift" for e in report.events), report.events
    assert engine.probe_score() <= reference + guards.drift_margin
    assert "drift guard" in engine.status()["guard"]
    if backoff == 0:
        assert report.reverted and all(not np.any(w) for w in weights_of(model).values())


@pytest.mark.usefixtures("always_reward")
def test_without_the_drift_guard_the_same_turn_breaks_the_probe() -> None:
    """The guard is what keeps the probe in check (so the test above can fail)."""
    guards = GuardConfig(drift_check=False, max_turn_update=1e3)
    model = make_plastic(HARMFUL, guards=guards)
    report = chat_turn(model, Conversation(model, seed=0), "z" * 400)
    assert not report.reverted
    assert model.engine.probe_score() > model.engine.probe_reference() + 0.02


def test_feedback_credits_the_last_reply_once() -> None:
    model = make_plastic(AdapterConfig(reward=("feedback",)))
    engine = model.engine
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, FACT, reply_tokens=20)
    before = weights_of(model)
    start = engine.snapshot()
    good = engine.feedback(+1)
    assert good.changed and "credited the last reply" in good.messages()[0]
    after_good = weights_of(model)
    (again,) = engine.feedback(+1).messages()
    assert again.startswith("nothing to credit: the last reply was already credited")
    assert all(np.array_equal(after_good[k], w) for k, w in weights_of(model).items())
    # /bad on the same reply moves the weights the other way
    engine.restore(start)
    engine.feedback(-1)
    after_bad = weights_of(model)
    for key in before:
        up, down = after_good[key] - before[key], after_bad[key] - before[key]
        assert np.any(up) and np.allclose(up, -down, atol=1e-6)
    # and /undo takes the feedback back
    engine.undo()
    assert all(np.array_equal(before[k], w) for k, w in weights_of(model).items())


def test_feedback_without_a_feedback_reward_says_so() -> None:
    model = make_plastic(AdapterConfig(reward=("surprise",)))
    report = model.engine.feedback(+1)
    assert report.messages() == ["no active adapter takes feedback"]
    assert not report.changed


def test_observe_learns_from_at_most_max_learn_tokens() -> None:
    model = make_plastic(guards=GuardConfig(max_learn_tokens=50, drift_check=False))
    engine = model.engine
    conv = Conversation(model, seed=0)
    engine.begin_turn()
    result = engine.observe(conv, FACT * 4)
    report = engine.end_turn()
    assert result.tokens == len(FACT) * 4
    assert model.adapters["default"].counters.tokens_learned <= 50
    assert any("first 50 of" in m for m in report.messages())


def test_stats_report_every_site() -> None:
    model = make_plastic()
    model.add_adapter("res", AdapterConfig(kind="residual", kind_params={"size": 16}))
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, FACT)
    stats = model.engine.stats()
    site = stats["adapters"]["default"]["sites"]["readout"]
    assert site["weight_change_since_attach"] > 0
    assert site["weight_change_last_turn"] == pytest.approx(site["weight_change_since_attach"])
    assert site["eligibility_norm"] > 0
    assert 0 < site["pre_rate"] < 1
    assert "surprise" in stats["adapters"]["default"]["reward_baselines"]
    assert stats["adapters"]["default"]["counters"]["tokens_learned"] > 0
    res = stats["adapters"]["res"]["sites"]["blocks.1.ffn"]
    assert 0 <= res["post_rate"] <= 1
    assert stats["probe"]["reference_bpb"] is not None
    assert_within_bounds(model)


def test_reset_is_undoable() -> None:
    model = make_plastic()
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, FACT)
    learnt = weights_of(model)
    model.engine.reset()
    assert all(not np.any(w) for w in weights_of(model).values())
    model.engine.undo()
    assert all(np.array_equal(learnt[k], w) for k, w in weights_of(model).items())


def test_drift_probe_rescores_only_the_adapters_over_one_backbone_pass() -> None:
    """The probe's backbone pass is computed once; each re-score replays the adapters over
    it and equals reading the whole probe again through the model."""
    model = make_plastic()
    engine = model.engine
    conv = Conversation(model, seed=0)
    chat_turn(model, conv, f"Remember: {FACT}")
    first_pass = engine._cached_probe_pass()
    assert first_pass is not None
    chat_turn(model, conv, f"Remember: {FACT} {FACT}")
    assert engine._cached_probe_pass() is first_pass  # not recomputed
    replayed = engine.probe_score()
    assert replayed == pytest.approx(model.score(engine.probe()), abs=1e-5)
    with model.disable_adapter():
        frozen = model.score(engine.probe())
    assert engine.probe_reference() == pytest.approx(frozen, abs=1e-5)


def test_drift_probe_reads_the_whole_model_when_an_adapter_feeds_the_backbone() -> None:
    model = make_plastic(AdapterConfig(kind="residual", rule="stdp"))
    assert model.feeds_backbone()
    engine = model.engine
    assert engine._cached_probe_pass() is None
    assert engine.probe_score() == model.score(engine.probe())
