"""Registry of learning rules: built-ins, in-process registrations and entry-point plugins.

Another package adds a rule without touching ours by declaring an entry point:

    [project.entry-points."plastic.rules"]
    myrule = "mypackage.myrule"          # a module (or "module:object") satisfying LearningRule

The entry name is the rule id stored in adapter configs. Listing reads entry-point names
without importing anything; a plugin is imported only when its rule is requested (or when
`plastic rules` shows its parameters). Built-ins are consulted exactly like entry points.
The machinery (duplicates, broken plugins, PLASTIC_DISABLE_PLUGIN_AUTOLOAD) is the one
`plastic.plugins.PluginRegistry` shared with reward sources; this module is its rules
instance and the functions the rest of the code calls.
"""

from __future__ import annotations

from importlib import metadata  # noqa: F401  (tests patch metadata.entry_points through here)
from typing import Any

from plastic.errors import RuleError
from plastic.plugins import DISABLE_AUTOLOAD_ENV, PluginRegistry, PluginSource, PluginWarning
from plastic.rules.protocol import LearningRule, protocol_problems

ENTRY_POINT_GROUP = "plastic.rules"
BUILTIN_RULES: dict[str, str] = {
    "stdp": "plastic.rules.stdp",
    "rstdp": "plastic.rules.rstdp",
    "hebb": "plastic.rules.hebb",
    "detector_stdp": "plastic.rules.detector_stdp",
    "delta_mixer": "plastic.rules.delta_mixer",
}
RULES: PluginRegistry[LearningRule] = PluginRegistry(
    "learning rule", ENTRY_POINT_GROUP, BUILTIN_RULES, protocol_problems, RuleError
)
RuleSource = PluginSource

__all__ = [
    "BUILTIN_RULES",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "RULES",
    "PluginWarning",
    "RuleSource",
    "get_rule",
    "load_all",
    "refresh",
    "register_rule",
    "rule_names",
    "rule_sources",
    "unregister_rule",
]


def get_rule(name: str) -> LearningRule:
    """The rule called `name`, imported on first use and checked against the protocol."""
    return RULES.get(name)


def rule_sources() -> dict[str, PluginSource]:
    """Every known rule by name, without importing any of them. Duplicates warn (once)."""
    return RULES.sources()


def rule_names() -> list[str]:
    """Names of every known rule (sorted), without importing any of them."""
    return RULES.names()


def load_all() -> list[tuple[PluginSource, LearningRule]]:
    """Import every known rule; broken ones warn (PluginWarning) and are left out."""
    return RULES.load_all()


def refresh() -> None:
    """Forget cached entry points and loaded rules (after installing a plugin in-process)."""
    RULES.refresh()


def register_rule(rule: Any = None, *, name: str | None = None, replace: bool = False) -> Any:
    """Register a rule object in this process (tests, notebooks). Usable as a decorator.

    `@register_rule` on a class (or a module object) makes `get_rule(rule.name)` return it.
    A name already registered raises RuleError unless `replace=True`; built-in names cannot
    be replaced.
    """
    return RULES.register(rule, name=name, replace=replace)


def unregister_rule(name: str) -> None:
    """Remove a rule added with `register_rule` (no error if it is not registered)."""
    RULES.unregister(name)
