"""What an adapter is (`AdapterConfig`) and how the engine guards it (`GuardConfig`).

Both are frozen dataclasses stored as JSON. `AdapterConfig` holds what every adapter kind
shares; a kind's own settings (`ReadoutConfig`, `ResidualConfig`, `MemoryConfig`, or a
plugin's) live in `kind_params`, filled in with the kind's defaults, and its equations in
its module (see `plastic.plasticity.kinds`). `AdapterConfig.from_dict` accepts files written
by newer versions (unknown keys warn and are ignored, as in PEFT); files of the previous
format are converted or refused by `plastic.plasticity.config_v1`.

Rule parameters are merged over the kind's defaults (`default_rule_params`), chosen for
that kind, not for the rule in isolation; a saved adapter records the effective parameters,
so it behaves the same if the defaults change later.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plastic.errors import ConfigError
from plastic.plasticity.kinds import AdapterKind, get_kind

ADAPTER_FORMAT_VERSION = 2
BACKENDS = ("numba", "torch", "cuda")  # cuda: weights and rule state on the GPU


def default_rule_params(kind: str, rule: str) -> dict[str, Any]:
    """The rule parameters an adapter of `kind` uses unless its config overrides them."""
    return dict(get_kind(kind).default_rule_params(rule))


@dataclass(frozen=True)
class AdapterConfig:
    """One adapter: its kind, where it sits, how it learns, and from which rewards.

    target_sites: a list matches site names exactly or by dotted suffix ("ffn" hits every
    `blocks.i.ffn`); a string is a regular expression matched against the whole name.
    None picks the kind's default (e.g. "readout"; a residual adapter: the last block's
    ffn). Matching nothing is an error; the sites hit are recorded.
    kind_params: the kind's own settings; missing ones take the kind's defaults.
    """

    kind: str = "readout"
    target_sites: tuple[str, ...] | str | None = None
    rule: str = "rstdp"
    rule_params: Mapping[str, Any] = field(default_factory=dict)  # over default_rule_params
    backend: str = "numba"  # "numba" (event-driven CPU kernels) or "torch" (reference)
    reward: tuple[str, ...] = ("surprise", "feedback")  # reward sources, summed
    reward_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    learn_on_generated: bool = True  # step the rule on the model's own tokens (eligibility)
    seed: int = 0
    kind_params: Mapping[str, Any] = field(default_factory=dict)  # the kind's own settings

    def __post_init__(self) -> None:
        if isinstance(self.target_sites, list):
            object.__setattr__(self, "target_sites", tuple(self.target_sites))
        if isinstance(self.reward, str):
            object.__setattr__(self, "reward", (self.reward,))
        elif isinstance(self.reward, list):
            object.__setattr__(self, "reward", tuple(self.reward))
        object.__setattr__(self, "rule_params", dict(self.rule_params))
        object.__setattr__(
            self, "reward_params", {k: dict(v) for k, v in dict(self.reward_params).items()}
        )
        if not isinstance(self.kind, str):
            raise ConfigError(f"kind must be an adapter kind's name, got {self.kind!r}")
        if not isinstance(self.kind_params, Mapping):
            raise ConfigError("kind_params must be an object of the kind's settings")
        settings = self.kind_type.settings.from_dict(dict(self.kind_params))
        object.__setattr__(self, "kind_params", settings.to_dict())
        object.__setattr__(self, "_settings", settings)
        self.validate()

    @property
    def kind_type(self) -> AdapterKind:
        """The adapter kind (ConfigError if no kind has this name)."""
        return get_kind(self.kind)

    @property
    def settings(self) -> Any:
        """The kind's own settings (e.g. a `ReadoutConfig`), defaults filled in."""
        return self._settings  # type: ignore[attr-defined]

    def validate(self) -> AdapterConfig:
        """Raise ConfigError if the config cannot describe an adapter."""
        if self.target_sites is not None and not isinstance(self.target_sites, (str, tuple)):
            raise ConfigError("target_sites must be a list of names, a regex string, or None")
        if isinstance(self.target_sites, tuple) and not self.target_sites:
            raise ConfigError("target_sites is an empty list: it would match no site")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.rule, str) or not self.rule:
            raise ConfigError("rule must be a rule name (see `plastic rules`)")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if not isinstance(self.learn_on_generated, bool):
            raise ConfigError("learn_on_generated must be true or false")
        if not all(isinstance(r, str) and r for r in self.reward):
            raise ConfigError("reward must be a list of reward source names")
        unused = sorted(set(self.reward_params) - set(self.reward))
        if unused:
            raise ConfigError(
                f"reward_params given for unused reward source(s): {', '.join(unused)}"
            )
        self._check_rule_fits_kind()
        self.kind_type.check(self)
        return self

    def _check_rule_fits_kind(self) -> None:
        """A rule made for certain kinds (it lists them in `adapter_kinds`) is refused by
        the others; an unknown rule is reported when the adapter is built."""
        from plastic.rules import get_rule, rule_sources

        if self.rule not in rule_sources():
            return
        kinds = getattr(get_rule(self.rule), "adapter_kinds", None)
        if kinds is not None and self.kind not in kinds:
            raise ConfigError(
                f"rule {self.rule!r} is for {' or '.join(kinds)} adapters, not {self.kind!r}"
            )

    # -- derived values ---------------------------------------------------------------
    def effective_targets(self, n_layers: int) -> tuple[str, ...] | str:
        """target_sites, or the kind's default for a model with `n_layers` blocks."""
        if self.target_sites is not None:
            return self.target_sites
        default = self.kind_type.default_targets
        return default if default is not None else (f"blocks.{n_layers - 1}.ffn",)

    def effective_rule_params(self) -> dict[str, Any]:
        """The kind's defaults for this rule, overridden by `rule_params`."""
        return {**default_rule_params(self.kind, self.rule), **self.rule_params}

    def effective_settings(self) -> dict[str, Any]:
        """The settings this adapter runs with: the shared fields and its kind's own."""
        data = self.to_dict()
        for name in ("rule_params", "kind_params"):
            data.pop(name)
        data.update(self.kind_params)
        return data

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["rule_params"] = dict(self.rule_params)
        data["reward_params"] = {k: dict(v) for k, v in self.reward_params.items()}
        data["kind_params"] = dict(self.kind_params)
        if isinstance(self.target_sites, tuple):
            data["target_sites"] = list(self.target_sites)
        data["reward"] = list(self.reward)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdapterConfig:
        """Build from a dict; unknown keys warn and are ignored (newer files stay loadable)."""
        if not isinstance(data, Mapping):
            raise ConfigError("an adapter config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(
                f"ignoring unknown adapter config keys: {', '.join(unknown)}", stacklevel=2
            )
        values = {k: v for k, v in data.items() if k in known}
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"bad adapter config: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def memory_adapter_config(**changes: Any) -> AdapterConfig:
    """The chat's default adapter: the context memory (see `plastic.plasticity.memory`),
    crediting /good and /bad; `changes` override AdapterConfig fields."""
    values: dict[str, Any] = {
        "kind": "memory",
        "rule": "detector_stdp",
        "reward": ("feedback",),
        "learn_on_generated": False,
    }
    values.update(changes)
    return AdapterConfig(**values)


@dataclass(frozen=True)
class GuardConfig:
    """The engine's guards: they keep learning from ever making the chat unusable.

    - max_turn_update: cap on ||W - W_turn_start||_F of every adapter site per turn (a
      feedback counts as a turn); a larger change is scaled back towards the turn start.
      Also enforced every `cap_check_tokens` learned tokens inside a long turn.
    - drift_margin: after a turn that changed weights, the bits/byte of a fixed probe text
      (read from a fresh backbone state) may exceed the frozen backbone's by at most this
      much; otherwise the turn's weight change is halved (up to `drift_backoff` times)
      until it is, or else the whole turn is reverted. drift_check=False turns it off.
    - undo_depth: turns kept for `undo`.
    - max_learn_tokens: tokens of one observed turn that are learnt from; the rest of a
      longer paste is read (adapters still contribute) without learning.
      max_learn_tokens_per_token: the same limit when a learning residual adapter makes
      `observe` feed token by token (one forward pass per token is much slower).
    - probe_text: None for the shipped probe (`probe.txt`), or the text itself.
    """

    max_turn_update: float = 16.0
    drift_margin: float = 0.02
    drift_check: bool = True
    drift_backoff: int = 2
    undo_depth: int = 16
    max_learn_tokens: int = 16384
    max_learn_tokens_per_token: int = 2048
    cap_check_tokens: int = 256
    probe_text: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_turn_update) and self.max_turn_update > 0):
            raise ConfigError(f"max_turn_update must be > 0, got {self.max_turn_update!r}")
        if not (math.isfinite(self.drift_margin) and self.drift_margin >= 0):
            raise ConfigError(f"drift_margin must be >= 0, got {self.drift_margin!r}")
        for name in (
            "undo_depth",
            "drift_backoff",
            "max_learn_tokens",
            "max_learn_tokens_per_token",
            "cap_check_tokens",
        ):
            value = getattr(self, name)
            if int(value) != value or value < (0 if name in ("undo_depth", "drift_backoff") else 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.probe_text is not None and not self.probe_text.strip():
            raise ConfigError("probe_text must not be empty")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"ignoring unknown guard config keys: {', '.join(unknown)}", stacklevel=2)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ConfigError(f"bad guard config: {exc}") from None


def _finite(value: Any) -> bool:
    """Whether `value` is a finite number (an int or a float)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def as_name_list(value: Sequence[str] | str) -> list[str]:
    """A string or a sequence of strings as a list."""
    return [value] if isinstance(value, str) else list(value)
