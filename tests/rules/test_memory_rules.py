"""The context memory's two rules: each learns what its docstring says, through the registry."""

from __future__ import annotations

import numpy as np

from plastic.kernels_numba.cpu_memory import detector_of
from plastic.kernels_numba.memory_layout import MemoryParams, mixer_sets, new_tables
from plastic.rules import get_rule
from plastic.rules.protocol import protocol_problems


def tables_of(detectors: int, synapses: int):
    mixer = get_rule("delta_mixer").initial_weights(
        mixer_sets(PARAMS), 2, get_rule("delta_mixer").Params()
    )
    return new_tables(PARAMS, detectors, synapses, mixer)


PARAMS = MemoryParams(np.array([1], np.int64), 2.0, 0.95, 0.01, 1, 10.0, 0.05, 0.2)


def synapses_of(tables, key) -> dict[int, float]:
    d = detector_of(tables, np.uint64(key), False)
    out, p = {}, tables.det_head[d]
    while p >= 0:
        out[int(tables.syn_post[p])] = float(tables.syn_weight[p])
        p = tables.syn_next[p]
    return out


def test_both_rules_are_registered_and_satisfy_the_protocol() -> None:
    for name in ("detector_stdp", "delta_mixer"):
        rule = get_rule(name)
        assert protocol_problems(rule) == []
        assert rule.paper


def test_detector_stdp_estimates_what_follows_the_detector() -> None:
    """A detector followed by byte 1 three times in four: its weights go to ~3/4 and ~1/4,
    summing to 1, recent bytes weighted more (the rate floor 1 - decay)."""
    rule = get_rule("detector_stdp")
    params = rule.Params(decay=0.95)
    tables = tables_of(64, 64)
    state = rule.init_state(1, 256, params)
    key = np.array([12345], np.uint64)
    for _ in range(200):
        for post in (1, 1, 1, 2):
            tables, state = rule.step(key, np.array([post]), tables, state, params)
    w = synapses_of(tables, 12345)
    assert set(w) == {1, 2}
    assert abs(sum(w.values()) - 1.0) < 1e-4
    assert 0.6 < w[1] < 0.85 and 0.15 < w[2] < 0.4
    tables, state = rule.step(key, np.array([3]), tables, state, params)
    assert synapses_of(tables, 12345)[3] >= 1 - params.decay - 1e-6  # never slower than this


def test_detector_stdp_feedback_depresses_the_reply_it_credits() -> None:
    rule = get_rule("detector_stdp")
    params = rule.Params()
    tables = tables_of(64, 64)
    state = rule.init_state(1, 256, params)._replace(orders=np.array([1], np.int64))
    context = np.array([7], np.uint8)
    # "7 -> 9" learnt once, then a reply "9" after "7" is punished
    tables, _ = rule.apply_reward(
        1.0, tables, state._replace(context=context, known=1, reply=np.array([9], np.uint8)), params
    )
    d = int(tables.sizes[0]) - 1
    before = float(tables.syn_weight[tables.det_head[d]])
    tables, used = rule.apply_reward(
        -1.0,
        tables,
        state._replace(context=context, known=1, reply=np.array([9], np.uint8)),
        params,
    )
    assert float(tables.syn_weight[tables.det_head[d]]) < before
    assert used.reply.size == 0


def test_delta_mixer_learns_to_trust_the_expert_that_is_right() -> None:
    rule = get_rule("delta_mixer")
    params = rule.Params(rate=0.05, init_top=0.5)
    weights = rule.initial_weights(1, 2, params)
    state = rule.init_state(1, 2, params)
    rng = np.random.default_rng(0)
    for _ in range(300):
        y = int(rng.integers(0, 4))
        logs = np.full((2, 256), np.log(1e-4))
        logs[0, 200] = np.log(0.9)  # expert 0 always says 200: wrong
        logs[1, y] = np.log(0.9)  # expert 1 knows the byte
        z = weights[0] @ logs
        q = np.exp(z - z.max())
        q /= q.sum()
        weights, state = rule.step((logs, logs @ q, 0), np.array([y]), weights, state, params)
    assert weights[0, 1] > 0.9 and weights[0, 0] < 0.4  # from 0.5 each
    assert state.steps == 300
