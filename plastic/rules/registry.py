"""Registry of learning rules: built-ins, in-process registrations and entry-point plugins.

Another package adds a rule without touching ours by declaring an entry point:

    [project.entry-points."plastic.rules"]
    myrule = "mypackage.myrule"          # a module (or "module:object") satisfying LearningRule

The entry name is the rule id stored in adapter configs. Listing reads entry-point names
without importing anything; a plugin is imported only when its rule is requested (or when
`plastic rules` shows its parameters). Built-ins live in an in-code table that is consulted
exactly like entry points (same `RuleSource`, same lazy import, same protocol check).

- Duplicated names warn (`PluginWarning`); the first source wins, in the order built-in,
  `register_rule`, entry points.
- A plugin that fails to import or does not satisfy the protocol / `api_version` warns when
  listed and raises RuleError when requested; it never crashes the listing.
- Set PLASTIC_DISABLE_PLUGIN_AUTOLOAD=1 to ignore entry points (built-ins and
  `register_rule` still work), like pytest's PYTEST_DISABLE_PLUGIN_AUTOLOAD.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

from plastic.errors import RuleError
from plastic.rules.protocol import LearningRule, protocol_problems

ENTRY_POINT_GROUP = "plastic.rules"
DISABLE_AUTOLOAD_ENV = "PLASTIC_DISABLE_PLUGIN_AUTOLOAD"

BUILTIN_RULES: dict[str, str] = {
    "stdp": "plastic.rules.stdp",
    "rstdp": "plastic.rules.rstdp",
    "hebb": "plastic.rules.hebb",
}

T = TypeVar("T")


class PluginWarning(UserWarning):
    """A rule plugin is duplicated, broken, or incompatible (it is skipped, not fatal)."""


@dataclasses.dataclass(frozen=True)
class RuleSource:
    """Where a rule comes from, known without importing it."""

    name: str
    origin: str  # "builtin", "registered", or the providing distribution "name version"
    target: str  # what is imported: "module" or "module:attr"
    load: Callable[[], object] = dataclasses.field(repr=False, compare=False)


_registered: dict[str, RuleSource] = {}
_loaded: dict[str, LearningRule] = {}
_entry_point_cache: list[RuleSource] | None = None
_warned_duplicates: set[tuple[str, str, str]] = set()


def _import_target(target: str) -> object:
    module_name, _, attr = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _builtin_sources() -> list[RuleSource]:
    return [
        RuleSource(name, "builtin", target, lambda target=target: _import_target(target))
        for name, target in BUILTIN_RULES.items()
    ]


def _entry_point_sources() -> list[RuleSource]:
    global _entry_point_cache
    if _entry_point_cache is None:
        sources = []
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
            sources.append(RuleSource(ep.name, origin, ep.value, ep.load))
        _entry_point_cache = sources
    return _entry_point_cache


def plugins_disabled() -> bool:
    """Whether entry-point autoloading is turned off by the environment."""
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false")


def refresh() -> None:
    """Forget cached entry points and loaded rules (after installing a plugin in-process)."""
    global _entry_point_cache
    _entry_point_cache = None
    _loaded.clear()
    _warned_duplicates.clear()


def rule_sources() -> dict[str, RuleSource]:
    """Every known rule by name, without importing any of them. Duplicates warn (once)."""
    candidates = _builtin_sources() + list(_registered.values())
    if not plugins_disabled():
        candidates += _entry_point_sources()
    sources: dict[str, RuleSource] = {}
    for source in candidates:
        kept = sources.get(source.name)
        if kept is None:
            sources[source.name] = source
        elif (kept.origin, kept.target) != (source.origin, source.target):
            key = (source.name, source.origin, source.target)
            if key in _warned_duplicates:
                continue
            _warned_duplicates.add(key)
            warnings.warn(
                f"learning rule {source.name!r} from {source.origin} ({source.target}) is "
                f"ignored: the name is already provided by {kept.origin} ({kept.target})",
                PluginWarning,
                stacklevel=2,
            )
    return sources


def rule_names() -> list[str]:
    """Names of every known rule (sorted), without importing any of them."""
    return sorted(rule_sources())


def get_rule(name: str) -> LearningRule:
    """The rule called `name`, imported on first use and checked against the protocol."""
    if name in _loaded:
        return _loaded[name]
    sources = rule_sources()
    source = sources.get(name)
    if source is None:
        known = ", ".join(sorted(sources)) or "none"
        raise RuleError(f"unknown learning rule {name!r}; known rules: {known}")
    try:
        rule = source.load()
    except Exception as exc:  # a broken plugin must not take the caller down with a traceback
        raise RuleError(
            f"learning rule {name!r} from {source.origin} failed to import "
            f"({source.target}): {type(exc).__name__}: {exc}"
        ) from exc
    problems = protocol_problems(rule)
    if not problems and getattr(rule, "name", None) != name:
        problems.append(f"its name attribute is {getattr(rule, 'name', None)!r}, not {name!r}")
    if problems:
        raise RuleError(
            f"learning rule {name!r} from {source.origin} is not a valid plastic rule: "
            + "; ".join(problems)
        )
    _loaded[name] = rule  # type: ignore[assignment]
    return rule  # type: ignore[return-value]


def load_all() -> list[tuple[RuleSource, LearningRule]]:
    """Import every known rule; broken ones warn (PluginWarning) and are left out."""
    loaded = []
    for name, source in sorted(rule_sources().items()):
        try:
            loaded.append((source, get_rule(name)))
        except RuleError as exc:
            warnings.warn(str(exc), PluginWarning, stacklevel=2)
    return loaded


def register_rule(rule: T | None = None, *, name: str | None = None, replace: bool = False) -> Any:
    """Register a rule object in this process (tests, notebooks). Usable as a decorator.

    `@register_rule` on a class (or a module object) makes `get_rule(rule.name)` return it.
    A name that is already registered raises RuleError unless `replace=True`; built-in
    names cannot be replaced.
    """

    def add(obj: T) -> T:
        rule_name = name or getattr(obj, "name", None)
        if not isinstance(rule_name, str) or not rule_name:
            raise RuleError("register_rule needs a rule with a non-empty `name`")
        problems = protocol_problems(obj)
        if problems:
            raise RuleError(f"cannot register rule {rule_name!r}: " + "; ".join(problems))
        if rule_name in BUILTIN_RULES:
            raise RuleError(f"{rule_name!r} is a built-in rule and cannot be replaced")
        if rule_name in _registered and not replace:
            raise RuleError(f"rule {rule_name!r} is already registered (pass replace=True)")
        _registered[rule_name] = RuleSource(
            rule_name, "registered", f"{type(obj).__module__}:{rule_name}", lambda: obj
        )
        _loaded.pop(rule_name, None)
        return obj

    return add if rule is None else add(rule)


def unregister_rule(name: str) -> None:
    """Remove a rule added with `register_rule` (no error if it is not registered)."""
    _registered.pop(name, None)
    _loaded.pop(name, None)
