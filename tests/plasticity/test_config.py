"""AdapterConfig / GuardConfig validation and JSON, and site targeting (PEFT conventions)."""

from __future__ import annotations

import pytest

from plastic.errors import ConfigError
from plastic.plasticity import AdapterConfig, GuardConfig, attach, default_rule_params
from plastic.plasticity.targeting import match_sites
from tests.plasticity.conftest import make_backbone

SITES = ["encoder", "blocks.0.mix", "blocks.0.ffn", "blocks.1.mix", "blocks.1.ffn", "readout"]


def test_config_round_trips_through_json_dict() -> None:
    cfg = AdapterConfig(
        kind="residual",
        target_sites=["ffn"],
        rule="stdp",
        rule_params={"a_plus": 0.01},
        reward=["surprise"],
        reward_params={"surprise": {"sign": -1.0}},
        kind_params={"size": 16},
        seed=7,
    )
    again = AdapterConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.target_sites == ("ffn",) and again.reward == ("surprise",)


def test_unknown_keys_warn_and_are_ignored() -> None:
    data = AdapterConfig().to_dict() | {"from_the_future": 1}
    with pytest.warns(UserWarning, match="from_the_future"):
        cfg = AdapterConfig.from_dict(data)
    assert cfg == AdapterConfig()


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "lora"},
        {"target_sites": []},
        {"backend": "cuda-ish"},
        {"kind": "residual", "kind_params": {"size": 0}},
        {"kind": "residual", "kind_params": {"beta": 1.5}},
        {"kind": "residual", "kind_params": {"scale": -1.0}},
        {"kind_params": {"sharpness": 0.5}},
        {"kind_params": {"recall_threshold": -1.0}},
        {"kind_params": {"gate_power": 1.0}},  # a readout setting version 2 dropped
        {"kind": "readout", "rule": "detector_stdp", "reward": ["feedback"]},
        {"reward": ["surprise"], "reward_params": {"feedback": {"scale": 2.0}}},
    ],
)
def test_bad_adapter_configs_are_config_errors(bad: dict) -> None:
    with pytest.raises(ConfigError):
        AdapterConfig(**bad)


@pytest.mark.parametrize(
    "bad",
    [{"max_turn_update": 0.0}, {"drift_margin": -0.1}, {"undo_depth": -1}, {"probe_text": " "}],
)
def test_bad_guard_configs_are_config_errors(bad: dict) -> None:
    with pytest.raises(ConfigError):
        GuardConfig(**bad)


def test_kind_defaults_merge_under_user_rule_params() -> None:
    cfg = AdapterConfig(rule_params={"learning_rate": 0.5})
    params = cfg.effective_rule_params()
    assert params["learning_rate"] == 0.5
    assert params["tau_pre"] == default_rule_params("readout", "rstdp")["tau_pre"]


def test_list_targets_match_exact_names_and_dotted_suffixes() -> None:
    assert match_sites(SITES, ["readout"]) == ["readout"]
    assert match_sites(SITES, ["ffn"]) == ["blocks.0.ffn", "blocks.1.ffn"]
    assert match_sites(SITES, ["1.mix", "encoder"]) == ["encoder", "blocks.1.mix"]


def test_suffixes_must_be_whole_dotted_parts() -> None:
    with pytest.raises(ConfigError, match="match no site"):
        match_sites(SITES, ["fn"])


def test_a_string_target_is_a_full_match_regex() -> None:
    assert match_sites(SITES, r"blocks\.\d+\.mix") == ["blocks.0.mix", "blocks.1.mix"]
    with pytest.raises(ConfigError, match="match no site"):
        match_sites(SITES, r"blocks\.\d+")
    with pytest.raises(ConfigError, match="invalid"):
        match_sites(SITES, "blocks.(")


def test_matching_nothing_lists_the_sites() -> None:
    with pytest.raises(ConfigError, match="sites are: encoder"):
        match_sites(SITES, ["nowhere"])


def test_attach_records_the_sites_hit() -> None:
    model = attach(
        make_backbone(),
        AdapterConfig(kind="residual", target_sites=["ffn"], kind_params={"size": 8}),
    )
    assert model.adapters["default"].sites == ["blocks.0.ffn", "blocks.1.ffn"]
    residual_default = attach(
        make_backbone(), AdapterConfig(kind="residual", kind_params={"size": 8})
    )
    assert residual_default.adapters["default"].sites == ["blocks.1.ffn"]  # the last block
    readout_default = attach(make_backbone())
    assert readout_default.adapters["default"].sites == ["readout"]
