"""Rule parameters: documented defaults, JSON round trip, validation with RuleError."""

from __future__ import annotations

import json
import math

import pytest

from plastic.errors import RuleError
from plastic.rules import get_rule
from plastic.rules.traces import decay_factor, rate_gain, tau_from_euler


@pytest.mark.parametrize("name", ["stdp", "rstdp", "hebb"])
def test_params_round_trip_through_json(name: str) -> None:
    rule = get_rule(name)
    params = rule.Params()
    data = json.loads(json.dumps(params.to_dict()))
    assert rule.params_from_dict(data) == params
    assert [spec.name for spec in rule.Params.describe()] == list(data)


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("stdp", {"tau_pre": 0.0}, "tau_pre must be a finite number > 0"),
        ("stdp", {"w_min": 1.0, "w_max": 0.0}, "w_min < w_max"),
        ("stdp", {"weight_dependence": "power"}, "must be one of additive, multiplicative"),
        ("stdp", {"a_plus": -1.0}, "a_plus must be a finite number >= 0"),
        ("rstdp", {"max_update_norm": 0.0}, "max_update_norm"),
        ("rstdp", {"learning_rate": "fast"}, "must be a float"),
        ("rstdp", {"tau_eligibility": math.inf}, "tau_eligibility"),
        ("hebb", {"update_interval": 0}, "update_interval must be an integer >= 1"),
        ("hebb", {"update_interval": 2.5}, "must be a int"),
        ("hebb", {"tau_rate": 0.5}, "tau_rate must be >= 1"),
        ("hebb", {"colour": "red"}, "unknown parameter"),
    ],
)
def test_invalid_params_raise_rule_error(name: str, bad: dict, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        get_rule(name).params_from_dict(bad)


def test_integers_are_accepted_for_float_parameters() -> None:
    params = get_rule("stdp").params_from_dict({"tau_pre": 10})
    assert params.tau_pre == 10.0 and isinstance(params.tau_pre, float)


def test_trace_conventions() -> None:
    assert decay_factor(20.0) == pytest.approx(math.exp(-1 / 20), rel=1e-7)
    assert decay_factor(tau_from_euler(8.0)) == pytest.approx(1 - 1 / 8, rel=1e-7)
    assert rate_gain(4.0) == 0.25


def test_unknown_backend_is_a_rule_error() -> None:
    rule = get_rule("stdp")
    with pytest.raises(RuleError, match="unknown backend 'tpu'"):
        rule.init_state(2, 2, rule.Params(), backend="tpu")
    with pytest.raises(RuleError, match="positive integers"):
        rule.init_state(0, 2, rule.Params())
