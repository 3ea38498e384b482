"""Backbone configuration (a frozen dataclass stored as JSON beside the weights) and presets."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from plastic.errors import ConfigError

SURROGATES = ("atan", "fast_sigmoid", "sigmoid", "triangular")


@dataclass(frozen=True)
class ModelConfig:
    """Shape and neuron parameters of a `SpikingLM`.

    Every token is simulated for `t_fast + t_slow` timesteps: during the `t_fast`
    fast steps the input current drives the LIF populations; during the `t_slow`
    slow steps the current is off and membranes relax (late spikes carry how far
    above threshold a neuron was).
    """

    name: str = "tiny"
    vocab_size: int = 260  # byte tokenizer: 256 bytes + 4 specials
    d_model: int = 256  # width of the residual stream (membrane of non-spiking integrators)
    n_layers: int = 4
    d_ff: int = 1024  # size of each block's spiking feed-forward population
    n_heads: int = 8  # heads of the token-mixing (decayed retention) path
    t_fast: int = 3  # timesteps per token with input current on
    t_slow: int = 1  # timesteps per token with input current off
    beta_init: float = 0.9  # initial LIF membrane decay per timestep (learned per neuron)
    threshold: float = 1.0  # LIF firing threshold (membrane units)
    surrogate: str = "atan"  # surrogate gradient: one of SURROGATES
    surrogate_scale: float = 2.0  # alpha (atan) or slope (fast_sigmoid/sigmoid)
    decay_min: float = 0.5  # per-head token-mixing decays are initialised in [decay_min, decay_max]
    decay_max: float = 0.985  # and never exceed decay_max (bounded memory, like training)
    tokenizer: str = "byte"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def timesteps(self) -> int:
        """Total simulated timesteps per token."""
        return self.t_fast + self.t_slow

    def validate(self) -> ModelConfig:
        """Raise ConfigError if the configuration cannot describe a model (types, ranges and
        sizes are checked before anything is allocated)."""
        self._check_types()
        for name, high in LIMITS.items():
            value = getattr(self, name)
            low = 0 if name == "t_slow" else 1
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high:,}, not {value:,}")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        if self.t_fast < 1 or self.t_slow < 0:
            raise ConfigError("t_fast must be >= 1 and t_slow >= 0")
        if self.surrogate not in SURROGATES:
            raise ConfigError(
                f"unknown surrogate {self.surrogate!r}; choose from {', '.join(SURROGATES)}"
            )
        if not (0.0 < self.beta_init < 1.0 and self.threshold > 0 and self.surrogate_scale > 0):
            raise ConfigError("need 0 < beta_init < 1, threshold > 0 and surrogate_scale > 0")
        if not 0.0 < self.decay_min <= self.decay_max < 1.0:
            raise ConfigError("need 0 < decay_min <= decay_max < 1")
        for name in ("vocab_size", "d_model", "n_layers", "d_ff", "n_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive")
        return self

    def _check_types(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = _FIELD_TYPES.get(str(f.type), object)
            ok = isinstance(value, kind) and not isinstance(value, bool)
            if ok and kind == _NUMBER and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, not {value!r}")
            if not ok:
                raise ConfigError(
                    f"{f.name} must be {_TYPE_NAMES[kind]}, not {type(value).__name__} {value!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dict; unknown keys warn (newer files stay loadable) instead of failing."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"ignoring unknown model config keys: {', '.join(unknown)}", stacklevel=2)
        try:
            return cls(**{k: v for k, v in data.items() if k in known}).validate()
        except TypeError as exc:
            raise ConfigError(f"bad model config: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# Upper bounds that no real backbone reaches and that keep a bad config from allocating
# without limit (a config is checked against these before a single tensor exists).
LIMITS = {
    "vocab_size": 1 << 20,
    "d_model": 1 << 14,
    "n_layers": 256,
    "d_ff": 1 << 16,
    "n_heads": 1 << 10,
    "t_fast": 64,
    "t_slow": 64,
}
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, Any] = {"int": int, "float": _NUMBER, "str": str}
_FIELD_TYPES["dict[str, Any]"] = dict
_TYPE_NAMES: dict[Any, str] = {
    int: "an integer",
    _NUMBER: "a number",
    str: "text",
    dict: "an object",
    object: "a value",
}


# Tokenizers this package has: a config naming another one cannot be used (see `preset`).
TOKENIZERS = ("byte",)

PRESETS: dict[str, ModelConfig] = {
    # The shipped default: small enough to train on a 2-core CPU.
    "tiny": ModelConfig(),
    # tiny with twice the feed-forward neurons: grown from a trained tiny by
    # scripts/widen-ffn.py (Net2WiderNet), then trained on (docs/log, 2026-12-07).
    "tiny-wide": ModelConfig(name="tiny-wide", d_ff=2048),
    # Project Nord's 144M design on bytes: T_fast 8 + T_slow 2 and Nord's 6 layers, with the
    # width that Nord spent on a 128,256-token embedding moved into the network (d_model
    # 496 -> 1536, d_ff 1024 -> 3072): 144,766,388 parameters, of which the byte embedding
    # and readout are 0.55 % (see plastic/models/footprint.py and README).
    "nord-144m": ModelConfig(
        name="nord-144m",
        d_model=1536,
        n_layers=6,
        d_ff=3072,
        n_heads=8,
        t_fast=8,
        t_slow=2,
    ),
}


def require_tokenizer(cfg: ModelConfig) -> ModelConfig:
    """`cfg`, or a one-line ConfigError if it needs a tokenizer this package lacks (a model
    trained on bytes under another tokenizer's name would be a model of nothing)."""
    if cfg.tokenizer not in TOKENIZERS:
        raise ConfigError(
            f"{cfg.name}: needs tokenizer {cfg.tokenizer!r}, which plastic lacks "
            f"(it has: {', '.join(TOKENIZERS)})"
        )
    return cfg


def preset(preset_name: str, /, **overrides: Any) -> ModelConfig:
    """Return the named preset, with keyword overrides (e.g. n_layers=2); a preset (or an
    override) naming a tokenizer the package lacks is a ConfigError."""
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r}; choose from {', '.join(PRESETS)}")
    return require_tokenizer(dataclasses.replace(PRESETS[preset_name], **overrides).validate())
