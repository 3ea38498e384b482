"""Adapter kinds: the contract one kind fulfils (`AdapterKind`, and `AdapterLayer` for the
layer it puts at each site) and their registry, so another package can ship a kind.

    [project.entry-points."plastic.adapters"]
    mykind = "mypackage.mykind:KIND"      # an object satisfying AdapterKind

A kind owns its settings (a frozen dataclass, stored as `AdapterConfig.kind_params`), its
defaults (sites, rule parameters) and its layer class. Generic code (`PlasticModel`,
`LearningEngine`, `adapter_io`, the recorder) calls layers only through `AdapterLayer` and
never asks which kind it holds. Same machinery and conventions as learning rules
(`plastic.plugins.PluginRegistry`); built-ins: `readout`, `residual`, `memory`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from plastic.errors import ConfigError, RuleError
from plastic.plugins import PluginRegistry, contract_problems

if TYPE_CHECKING:
    from plastic.models.sites import SiteInfo
    from plastic.plasticity.config import AdapterConfig

ADAPTER_API_VERSION = 1
ENTRY_POINT_GROUP = "plastic.adapters"
BUILTIN_KINDS = {
    "readout": "plastic.plasticity.readout:KIND",
    "residual": "plastic.plasticity.residual:KIND",
    "memory": "plastic.plasticity.memory:KIND",
}


@runtime_checkable
class AdapterLayer(Protocol):
    """One adapter's layer at one site, as generic code drives it.

    Per forward pass a layer is either a reader of the logits (`feeds_backbone` False:
    `record` the site's spikes, then `contribute` per position, or `read` whole chunks when
    `reads_chunks`) or a writer into the backbone (`feeds_backbone` True: `forward` in the
    site hook returns what is added to the stream). Per learnt token: `learn_transition`,
    then `reward`. `extra_state` is what the layer keeps beside its synapses (saved with the
    adapter and in its snapshots); `load_extra_state` restores it (ValueError if bad).
    `learns_while_generating` False promises that the model's own reply changes nothing the
    drift guard's probe reads (then the probe is scored while the reply is generated); a
    layer without the attribute is taken to learn from it. `trace_form` says how a trace
    records the layer's learning: "synapses" (a weight matrix, its pre/post rasters and
    rule operations) or "reads" (the chunks it read and blobs of its variable-size state).
    """

    site: SiteInfo
    synapses: Any
    feeds_backbone: bool
    reads_chunks: bool
    learns_while_generating: bool
    trace_form: str

    @property
    def weights(self) -> np.ndarray: ...

    def learn_transition(self, token: int) -> None: ...

    def reward(self, value: float) -> None: ...

    def forget_context(self) -> None: ...

    def reset(self) -> None: ...

    def extra_state(self) -> dict[str, np.ndarray]: ...

    def load_extra_state(self, arrays: Mapping[str, np.ndarray]) -> None: ...

    def rates(self) -> dict[str, float]: ...

    def reset_counters(self) -> None: ...


@runtime_checkable
class AdapterKind(Protocol):
    """What an adapter kind declares; `create_layer` builds its layer at one site."""

    name: str
    api_version: int
    summary: str
    settings: type  # the kind's settings dataclass (KindSettings)
    default_rule: str
    default_reward: tuple[str, ...]
    default_targets: tuple[str, ...] | None  # None: the last block's ffn

    def default_rule_params(self, rule: str) -> dict[str, Any]: ...

    def check(self, config: AdapterConfig) -> None: ...

    def create_layer(
        self, site: SiteInfo, vocab_size: int, config: AdapterConfig, rng: np.random.Generator
    ) -> AdapterLayer: ...


REQUIRED_ATTRIBUTES = (
    "name",
    "api_version",
    "summary",
    "settings",
    "default_rule",
    "default_reward",
    "default_targets",
    "default_rule_params",
    "check",
    "create_layer",
)


def protocol_problems(kind: object) -> list[str]:
    """What keeps `kind` from satisfying AdapterKind (empty list when it does)."""
    callables = ("default_rule_params", "check", "create_layer")
    problems = contract_problems(kind, REQUIRED_ATTRIBUTES, ADAPTER_API_VERSION, callables)
    if problems and problems[0].startswith("missing"):
        return problems
    settings = getattr(kind, "settings", None)
    if not (callable(getattr(settings, "from_dict", None)) and hasattr(settings, "to_dict")):
        problems.append("settings has no from_dict/to_dict")
    return problems


@dataclass(frozen=True)
class KindSpec:
    """An AdapterKind described by its values (how the built-in kinds are declared)."""

    name: str
    summary: str
    settings: type
    default_rule: str
    default_reward: tuple[str, ...]
    default_targets: tuple[str, ...] | None  # None: the last block's ffn
    layer: Callable[[SiteInfo, int, AdapterConfig, np.random.Generator], AdapterLayer]
    rule_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    checks: Callable[[AdapterConfig], None] | None = None  # beyond the settings' own
    api_version: int = ADAPTER_API_VERSION

    def default_rule_params(self, rule: str) -> dict[str, Any]:
        return dict(self.rule_defaults.get(rule, {}))

    def check(self, config: AdapterConfig) -> None:
        if self.checks is not None:
            self.checks(config)

    def create_layer(
        self, site: SiteInfo, vocab_size: int, config: AdapterConfig, rng: np.random.Generator
    ) -> AdapterLayer:
        return self.layer(site, vocab_size, config, rng)


KINDS: PluginRegistry[AdapterKind] = PluginRegistry(
    "adapter kind", ENTRY_POINT_GROUP, BUILTIN_KINDS, protocol_problems, ConfigError
)


def get_kind(name: str) -> AdapterKind:
    """The adapter kind called `name` (ConfigError if unknown or invalid)."""
    return KINDS.get(name)


def kind_names() -> list[str]:
    """Names of every known adapter kind, without importing them."""
    return KINDS.names()


def register_kind(kind: Any = None, *, name: str | None = None, replace: bool = False) -> Any:
    """Register an adapter kind in this process (usable as a decorator)."""
    return KINDS.register(kind, name=name, replace=replace)


def unregister_kind(name: str) -> None:
    """Remove a kind added with `register_kind`."""
    KINDS.unregister(name)


class KindSettings:
    """Base of a kind's settings dataclass: JSON in and out by its fields (`kind_name`
    names the kind in error messages)."""

    kind_name = "adapter"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        return settings_from_dict(cls, data, cls.kind_name)

    def to_dict(self) -> dict[str, Any]:
        return settings_to_dict(self)


def finite(value: Any) -> bool:
    """Whether `value` is a finite number (an int or a float, not a bool)."""
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def settings_from_dict(settings: type, data: Mapping[str, Any], kind: str) -> Any:
    """`settings(**data)` with unknown keys and bad values as one-line ConfigErrors."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown {kind} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    try:
        return settings(**dict(data))
    except (TypeError, RuleError) as exc:
        raise ConfigError(f"bad {kind} settings: {exc}") from None


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as JSON-able values (tuples as lists)."""
    import dataclasses

    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()
    }
