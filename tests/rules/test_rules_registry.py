"""The rule registry: built-ins, in-process registration, entry-point plugins and failures."""

from __future__ import annotations

import types
import warnings
from importlib import metadata

import pytest

from plastic.errors import RuleError
from plastic.rules import RULE_API_VERSION, LearningRule, get_rule, register_rule, registry
from plastic.rules.registry import PluginWarning, rule_sources, unregister_rule


def toy_rule(name: str = "toy", api_version: int = RULE_API_VERSION) -> types.SimpleNamespace:
    """A minimal object satisfying the rule protocol (it delegates to stdp)."""
    stdp = get_rule("stdp")
    return types.SimpleNamespace(
        name=name,
        api_version=api_version,
        summary="toy",
        paper="none",
        uses_reward=False,
        backends=("torch",),
        Params=stdp.Params,
        params_from_dict=stdp.params_from_dict,
        init_state=stdp.init_state,
        step=stdp.step,
        apply_reward=stdp.apply_reward,
        flush=stdp.flush,
        state_to_dict=stdp.state_to_dict,
        state_from_dict=stdp.state_from_dict,
    )


class FakeDist:
    name = "fake-plugins"
    version = "9.9"


def fake_entry_point(name: str, value: str) -> metadata.EntryPoint:
    ep = metadata.EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP)
    return ep._for(FakeDist()) if hasattr(ep, "_for") else ep


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch):
    """Install fake entry points (name -> "module:attr") for the duration of a test."""

    def install(**targets: str) -> None:
        eps = [fake_entry_point(name, value) for name, value in targets.items()]
        monkeypatch.setattr(
            registry.metadata,
            "entry_points",
            lambda group=None: [ep for ep in eps if group == registry.ENTRY_POINT_GROUP],
        )
        registry.refresh()

    yield install
    monkeypatch.undo()
    registry.refresh()


@pytest.mark.parametrize("name", ["stdp", "rstdp", "hebb"])
def test_builtins_satisfy_the_protocol(name: str) -> None:
    rule = get_rule(name)
    assert isinstance(rule, LearningRule)
    assert rule.api_version == RULE_API_VERSION
    assert rule.name == name
    assert rule_sources()[name].origin == "builtin"
    assert set(rule.backends) == {"torch", "numba", "cuda"}
    assert rule.paper and rule.summary
    for spec in rule.Params.describe():
        assert spec.unit and spec.doc, f"{name}.{spec.name} lacks a unit or a meaning"


def test_unknown_rule_lists_known_ones() -> None:
    with pytest.raises(RuleError, match="unknown learning rule 'nope'.*rstdp"):
        get_rule("nope")


def test_register_rule_in_process() -> None:
    rule = register_rule(toy_rule("toy-registered"))
    try:
        assert get_rule("toy-registered") is rule
        assert rule_sources()["toy-registered"].origin == "registered"
        with pytest.raises(RuleError, match="already registered"):
            register_rule(toy_rule("toy-registered"))
        register_rule(toy_rule("toy-registered"), replace=True)
    finally:
        unregister_rule("toy-registered")
    assert "toy-registered" not in rule_sources()


def test_register_rule_rejects_bad_rules() -> None:
    with pytest.raises(RuleError, match="built-in"):
        register_rule(toy_rule("stdp"))
    with pytest.raises(RuleError, match="api_version"):
        register_rule(toy_rule("old", api_version=0))
    broken = toy_rule("broken")
    del broken.step
    with pytest.raises(RuleError, match="missing attribute 'step'"):
        register_rule(broken)


def test_entry_point_plugins_load_lazily(fake_plugins, monkeypatch) -> None:
    module = types.ModuleType("fake_plugin_module")
    module.rule = toy_rule("toyplug")
    monkeypatch.setitem(__import__("sys").modules, "fake_plugin_module", module)
    fake_plugins(toyplug="fake_plugin_module:rule")
    source = rule_sources()["toyplug"]
    assert source.origin == "fake-plugins 9.9"
    assert get_rule("toyplug") is module.rule


def test_broken_plugins_warn_in_listings_and_fail_on_use(fake_plugins) -> None:
    fake_plugins(
        missing="module_that_does_not_exist_xyz",
        wrong="plastic.rules.params:ParamSpec",  # importable, but not a rule
    )
    with pytest.warns(PluginWarning) as caught:
        loaded = registry.load_all()
    names = [source.name for source, _ in loaded]
    assert names == ["delta_mixer", "detector_stdp", "hebb", "rstdp", "stdp"]
    messages = " ".join(str(w.message) for w in caught)
    assert "missing" in messages and "wrong" in messages
    with pytest.raises(RuleError, match="failed to import"):
        get_rule("missing")
    with pytest.raises(RuleError, match="not a valid plastic learning rule"):
        get_rule("wrong")


def test_duplicate_names_warn_and_builtin_wins(fake_plugins) -> None:
    fake_plugins(stdp="plastic.rules.hebb")
    with pytest.warns(PluginWarning, match="'stdp' from fake-plugins 9.9"):
        sources = rule_sources()
    assert sources["stdp"].origin == "builtin"
    assert get_rule("stdp").name == "stdp"


def test_environment_variable_disables_autoload(fake_plugins, monkeypatch) -> None:
    fake_plugins(other="plastic.rules.hebb")
    assert "other" in rule_sources()
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(rule_sources()) == ["delta_mixer", "detector_stdp", "hebb", "rstdp", "stdp"]
