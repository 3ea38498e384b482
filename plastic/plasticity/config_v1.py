"""Adapter configs of format version 1 (one flat object of 28 fields, every kind's settings
side by side), as saved adapters and traces recorded before version 2 hold them.

`upgrade_config` turns one into the version 2 layout (the kind's settings in `kind_params`)
when the adapter behaves exactly the same under it, and refuses it in one line, saying how
to convert it, when it does not: the tuning-only settings that version 2 dropped (see
docs/log/2026-12-06-adapter-kinds.md) are accepted only at their neutral values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plastic.errors import ConfigError

# The version 1 fields each kind reads; the others were ignored by that kind.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "readout": (
        "scale",
        "sharpness",
        "recall_threshold",
        "cache_mix",
        "confidence_power",
        "mix_doubt_power",
        "context_tau",
        "context_signature_tau",
        "context_tolerance",
    ),
    "residual": ("scale", "size", "beta", "threshold", "init_std"),
    "memory": (),
}
# Settings version 2 dropped, with the value at which they did nothing.
DROPPED: dict[str, Any] = {
    "gate_power": 0.0,
    "mix_purity_power": 0.0,
    "memory_tau": 0.0,
    "sampled_posts": 0,
    "cache_mix_gated": True,
}
# Readout settings added during format version 1, with the value that reproduces an adapter
# saved before the key existed (it was trained without the behaviour the key turns on).
BEFORE_KEY: dict[str, Any] = {
    "cache_mix": 0.0,
    "confidence_power": 1.0,
    "mix_doubt_power": 0.0,
    "mix_purity_power": 0.0,
    "context_tau": 0.0,
}
# Every flat key of a version 1 config that version 2 keeps elsewhere or dropped.
V1_KEYS = frozenset(DROPPED) | {k for keys in KIND_FIELDS.values() for k in keys}


def is_v1(data: Mapping[str, Any]) -> bool:
    """Whether `data` is a version 1 config (it has the flat per-kind settings)."""
    return any(key in data for key in V1_KEYS)


def upgrade_config(data: Mapping[str, Any]) -> dict[str, Any]:
    """A version 1 config as version 2 (a version 2 config is returned as it is)."""
    if not isinstance(data, Mapping) or not is_v1(data):
        return dict(data) if isinstance(data, Mapping) else data
    kind = data.get("kind", "readout")
    if kind not in KIND_FIELDS:
        raise ConfigError(f"unknown adapter kind {kind!r} in a version 1 adapter config")
    values = {**BEFORE_KEY, **data} if kind == "readout" else dict(data)
    for name, neutral in DROPPED.items():
        value = values.pop(name, neutral)
        if kind == "readout" and value != neutral:
            raise ConfigError(
                f"{name} = {value!r} is a tuning setting this version no longer has, so the "
                f"adapter cannot run as it was saved; to convert it, set {name} to {neutral!r} "
                "in its adapter_config.json (it then runs without it)"
            )
    own = {name: values.pop(name) for name in V1_KEYS if name in values}
    kind_params = dict(values.get("kind_params") or {})
    for name in KIND_FIELDS[kind]:
        if name in own and not (name == "scale" and own[name] is None):
            kind_params[name] = own[name]
    values["kind_params"] = kind_params
    return values
