"""`--set key=value`: the one syntax for parameters on the command line (replay, chat).

Values are JSON when they parse (numbers, true/false, lists), else text. For `chat`,
`rule.KEY` sets a parameter of the learning rule and `adapter.KEY` a field of the
adapter's config (`AdapterConfig`) or a setting of its kind; a bare KEY is a rule
parameter, as in `replay --set`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from plastic.errors import ConfigError

# adapter fields --set cannot change: they have their own options or are not settings
_NOT_SETTABLE = {"rule": "--rule", "reward": "--reward", "rule_params": "rule.KEY=VALUE"}


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are JSON when they parse (numbers, true/false), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def split_chat_sets(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule parameters, adapter fields) of `--set rule.KEY=V` / `--set adapter.KEY=V`;
    an unknown adapter field is a one-line ConfigError naming the known ones."""
    from plastic.plasticity.config import AdapterConfig
    from plastic.plasticity.kinds import get_kind, kind_names

    # the shared fields and every kind's own (an adapter takes its kind's as kind_params)
    fields = {f.name for f in dataclasses.fields(AdapterConfig)}
    for kind in kind_names():
        fields |= {f.name for f in dataclasses.fields(get_kind(kind).settings)}
    rule: dict[str, Any] = {}
    adapter: dict[str, Any] = {}
    for key, value in parse_sets(items).items():
        scope, dot, name = key.partition(".")
        if not dot:
            scope, name = "rule", key
        if not name:
            raise ConfigError(f"--set {key}=...: a name must follow {scope!r}.")
        if scope == "rule":
            rule[name] = value
        elif scope == "adapter":
            if name in _NOT_SETTABLE:
                raise ConfigError(f"--set adapter.{name}: use {_NOT_SETTABLE[name]} instead")
            if name not in fields:
                known = ", ".join(sorted(fields - set(_NOT_SETTABLE)))
                raise ConfigError(f"--set adapter.{name}: no such adapter setting (known: {known})")
            adapter[name] = value
        else:
            raise ConfigError(f"--set {key}: expected rule.KEY=VALUE or adapter.KEY=VALUE")
    return rule, adapter
