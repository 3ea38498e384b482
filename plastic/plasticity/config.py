"""What an adapter is (`AdapterConfig`) and how the engine guards it (`GuardConfig`).

Both are frozen dataclasses stored as JSON. `AdapterConfig.from_dict` accepts files
written by older versions (unknown keys warn and are ignored, as in PEFT) and refuses
files from a newer format version.

Adapter kinds (see `readout` and `residual` for the equations):
- "readout" (the default): plastic associative synapses from a site's spikes onto one
  output neuron per token id, added to the logits; a Hebbian, cache-like memory.
- "residual" (experimental): a plastic LIF population fed by a site's spikes, projected
  back into the residual stream through a fixed random matrix; the spiking cousin of LoRA.
- "memory" (the chat's default, `memory_adapter_config()`): a context memory of delay-line
  detectors with plastic synapses onto the byte neurons and a plastic mixer, at the
  readout (`plastic.plasticity.memory`); its own settings live in `kind_params`.

Rule parameters are merged over per-kind defaults (`default_rule_params`) that were chosen
for these adapters, not for the rule in isolation; a saved adapter records the effective
parameters, so it behaves the same if the defaults change later.
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

ADAPTER_FORMAT_VERSION = 1
KINDS = ("readout", "residual", "memory")

# Chosen by teach-and-probe runs on a trained tiny backbone (see `readout`): fast traces pair
# a token's spikes with the next token only; equal LTP/LTD keeps recalls that miss in check.
# tau_eligibility 1 step (was 10, then 2): a token's surprise credits its own pairing, not
# those of the tokens before it (T + 2 = 6 steps per token); chosen with the readout gain
# (14) and the gated cache mix (lambda 0.4, confidence^2.5, doubt^0.5, no fading) by
# `plastic bench adapt` on held-out text (100,000 bytes per stream), see
# docs/log/2026-11-23-readout.md.
# The context gate (context_tau, context_signature_tau, context_tolerance) was chosen the same
# way in the fifth round.
_READOUT_RULES: dict[str, dict[str, Any]] = {
    "rstdp": {
        "tau_pre": 2.0,
        "tau_post": 2.0,
        "a_plus": 1.0,
        "a_minus": 1.0,
        "tau_eligibility": 1.0,
        "learning_rate": 0.1,
        "baseline_tau": 0.0,  # the reward sources bring their own baselines
        "w_min": -1.0,
        "w_max": 1.0,
        "max_update_norm": 2.0,
    },
    "stdp": {"tau_pre": 2.0, "tau_post": 2.0, "a_plus": 0.05, "a_minus": 0.025},
    "hebb": {"tau_rate": 3.0, "learning_rate": 0.01, "update_interval": 3},
}
_RESIDUAL_RULES: dict[str, dict[str, Any]] = {
    "rstdp": {
        "tau_pre": 5.0,
        "tau_post": 5.0,
        "a_plus": 1.0,
        "a_minus": 1.0,
        "tau_eligibility": 20.0,
        "learning_rate": 0.002,
        "baseline_tau": 0.0,
        "w_min": -0.5,
        "w_max": 0.5,
        "max_update_norm": 0.5,
    },
    "stdp": {"tau_pre": 5.0, "tau_post": 5.0, "a_plus": 0.002, "a_minus": 0.0021, "w_max": 0.5},
    "hebb": {
        "tau_rate": 4.0,
        "learning_rate": 0.001,
        "update_interval": 4,
        "w_min": -0.5,
        "w_max": 0.5,
    },
}
_KIND_DEFAULTS = {
    # scale: readout gain in logits per unit weight; residual output current scale
    "readout": {"scale": 14.0, "target_sites": ("readout",)},
    "residual": {"scale": 0.02, "target_sites": None},  # None: the last block's ffn
    "memory": {"scale": 1.0, "target_sites": ("readout",)},  # scale unused
}


# Fields of AdapterConfig that only one kind reads (the others ignore them).
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "readout": (
        "sharpness",
        "recall_threshold",
        "memory_tau",
        "gate_power",
        "cache_mix",
        "cache_mix_gated",
        "confidence_power",
        "mix_doubt_power",
        "mix_purity_power",
        "context_tau",
        "context_signature_tau",
        "context_tolerance",
        "sampled_posts",
    ),
    "residual": ("size", "beta", "threshold", "init_std"),
}
# Shared fields the memory does not read (it runs its own kernels and adds no scaled output).
_MEMORY_IGNORES = ("backend", "scale")


def default_rule_params(kind: str, rule: str) -> dict[str, Any]:
    """The rule parameters an adapter of `kind` uses unless its config overrides them."""
    if kind == "memory":
        return {}  # detector_stdp's own defaults were chosen for the memory
    table = _READOUT_RULES if kind == "readout" else _RESIDUAL_RULES
    return dict(table.get(rule, {}))


@dataclass(frozen=True)
class AdapterConfig:
    """One adapter: where it sits, how it learns, and from which rewards.

    target_sites: a list matches site names exactly or by dotted suffix ("ffn" hits every
    `blocks.i.ffn`); a string is a regular expression matched against the whole name.
    None picks the kind's default: "readout" for a readout adapter, the last block's
    ffn for a residual one. Matching nothing is an error; the sites hit are recorded.
    """

    kind: str = "readout"
    target_sites: tuple[str, ...] | str | None = None
    rule: str = "rstdp"
    rule_params: Mapping[str, Any] = field(default_factory=dict)  # over default_rule_params
    backend: str = "numba"  # "numba" (event-driven CPU kernels) or "torch" (reference)
    size: int = 256  # residual: LIF neurons (readout: one neuron per token id, fixed)
    scale: float | None = None  # None: the kind's default (readout 14.0, residual 0.02)
    sharpness: float = 3.0  # readout: exponent p of the match, gain * sign(m) |m|^p
    recall_threshold: float = 0.5  # readout: recalls >= this (logits) that miss are depressed
    memory_tau: float = 0.0  # readout: W fades to 0 over this many learnt tokens (0: never)
    gate_power: float = 0.0  # readout: delta x (1 - max p)^q, q = this (0: no gate)
    cache_mix: float = 0.4  # readout: lambda of p = (1-l) p_model + l softmax(delta) (0: add)
    cache_mix_gated: bool = True  # readout: lambda x max softmax(delta)^q (memory's confidence)
    confidence_power: float = 2.5  # readout, gated mix: q (1: plain confidence)
    mix_doubt_power: float = 0.5  # readout, mix: lambda x (1 - max p_backbone)^r (0: off)
    mix_purity_power: float = 0.0  # readout, mix: lambda x purity(m)^s (0: off)
    context_tau: float = 1000.0  # readout: tokens of the read text's context (0: no context gate)
    context_signature_tau: float = 2000.0  # readout: learnt tokens the signature averages over
    context_tolerance: float = 0.002  # readout: gate 1 up to this distance D, 0 from twice it
    sampled_posts: int = 0  # readout: output spikes drawn from the prediction (LTD), per token
    beta: float = 0.9  # residual: LIF membrane decay per timestep
    threshold: float = 1.0  # residual: LIF threshold
    init_std: float | None = None  # residual: std of the initial plastic weights (None: auto)
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
        object.__setattr__(self, "kind_params", dict(self.kind_params))
        object.__setattr__(
            self, "reward_params", {k: dict(v) for k, v in dict(self.reward_params).items()}
        )
        self.validate()

    def validate(self) -> AdapterConfig:
        """Raise ConfigError if the config cannot describe an adapter."""
        if self.kind not in KINDS:
            raise ConfigError(f"unknown adapter kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.target_sites is not None and not isinstance(self.target_sites, (str, tuple)):
            raise ConfigError("target_sites must be a list of names, a regex string, or None")
        if isinstance(self.target_sites, tuple) and not self.target_sites:
            raise ConfigError("target_sites is an empty list: it would match no site")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if not isinstance(self.rule, str) or not self.rule:
            raise ConfigError("rule must be a rule name (see `plastic rules`)")
        if (self.kind == "memory") != (self.rule == "detector_stdp"):
            raise ConfigError("the memory kind learns with rule detector_stdp (and only it does)")
        if self.kind == "memory" and not set(self.reward) <= {"feedback"}:
            raise ConfigError(
                "the memory learns from the text itself; its only reward source is feedback"
            )
        if self.kind_params and self.kind != "memory":
            raise ConfigError(f"kind_params are for the memory kind, not {self.kind!r}")
        if self.kind == "memory":
            from plastic.plasticity.memory import MemoryConfig  # memory imports this module

            MemoryConfig.from_dict(self.kind_params)
        if self.backend not in ("numba", "torch"):
            raise ConfigError(f"backend must be 'numba' or 'torch', got {self.backend!r}")
        if int(self.size) != self.size or self.size < 1:
            raise ConfigError(f"size must be a positive integer, got {self.size!r}")
        for name in ("beta", "threshold"):
            value = getattr(self, name)
            if not (_finite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        if not (isinstance(self.sharpness, (int, float)) and 1.0 <= self.sharpness <= 8.0):
            raise ConfigError(f"sharpness must lie in [1, 8], got {self.sharpness!r}")
        if not (isinstance(self.cache_mix, (int, float)) and 0.0 <= self.cache_mix < 1.0):
            raise ConfigError(f"cache_mix must lie in [0, 1), got {self.cache_mix!r}")
        _check_exponent("gate_power", self.gate_power, zero_allowed=True)
        _check_exponent("confidence_power", self.confidence_power, zero_allowed=False)
        _check_exponent("mix_doubt_power", self.mix_doubt_power, zero_allowed=True)
        _check_exponent("mix_purity_power", self.mix_purity_power, zero_allowed=True)
        if not isinstance(self.cache_mix_gated, bool):
            raise ConfigError(
                f"cache_mix_gated must be true or false, got {self.cache_mix_gated!r}"
            )
        tau, signature_tau = self.context_tau, self.context_signature_tau
        if not (_finite(tau) and (tau == 0 or tau >= 1)):
            raise ConfigError(f"context_tau must be 0 (no gate) or >= 1 token, got {tau!r}")
        if not (_finite(signature_tau) and signature_tau >= 1):
            raise ConfigError(f"context_signature_tau must be >= 1 token, got {signature_tau!r}")
        if not (_finite(self.context_tolerance) and self.context_tolerance > 0):
            raise ConfigError(f"context_tolerance must be > 0, got {self.context_tolerance!r}")
        if not (isinstance(self.sampled_posts, int) and 0 <= self.sampled_posts <= 64):
            raise ConfigError(
                f"sampled_posts must be an integer in [0, 64], got {self.sampled_posts!r}"
            )
        if not (math.isfinite(self.memory_tau) and self.memory_tau >= 0):
            raise ConfigError(f"memory_tau must be >= 0 tokens, got {self.memory_tau!r}")
        if not (math.isfinite(self.recall_threshold) and self.recall_threshold >= 0):
            raise ConfigError(f"recall_threshold must be >= 0, got {self.recall_threshold!r}")
        if not self.beta <= 1.0:
            raise ConfigError(f"beta must be <= 1, got {self.beta}")
        for name in ("scale", "init_std"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if not all(isinstance(r, str) and r for r in self.reward):
            raise ConfigError("reward must be a list of reward source names")
        unused = sorted(set(self.reward_params) - set(self.reward))
        if unused:
            raise ConfigError(
                f"reward_params given for unused reward source(s): {', '.join(unused)}"
            )
        return self

    # -- derived values ---------------------------------------------------------------
    @property
    def effective_scale(self) -> float:
        return float(_KIND_DEFAULTS[self.kind]["scale"] if self.scale is None else self.scale)

    def effective_targets(self, n_layers: int) -> tuple[str, ...] | str:
        """target_sites, or the kind's default for a model with `n_layers` blocks."""
        if self.target_sites is not None:
            return self.target_sites
        default = _KIND_DEFAULTS[self.kind]["target_sites"]
        return default if default is not None else (f"blocks.{n_layers - 1}.ffn",)

    def effective_rule_params(self) -> dict[str, Any]:
        """The kind's defaults for this rule, overridden by `rule_params`."""
        return {**default_rule_params(self.kind, self.rule), **self.rule_params}

    def effective_settings(self) -> dict[str, Any]:
        """The settings this adapter runs with: the shared fields and its kind's own (for
        the memory, its `kind_params` with every default filled in), not the other kinds'."""
        data = self.to_dict()
        for name in ("rule_params", "kind_params"):
            data.pop(name)
        for kind, names in _KIND_FIELDS.items():
            if kind != self.kind:
                for name in names:
                    data.pop(name, None)
        if self.kind == "memory":
            from plastic.plasticity.memory import MemoryConfig  # memory imports this module

            for name in _MEMORY_IGNORES:
                data.pop(name)
            data.update(MemoryConfig.from_dict(self.kind_params).to_dict())
        else:
            data["scale"] = self.effective_scale
        return data

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
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


def _check_exponent(name: str, value: Any, *, zero_allowed: bool) -> None:
    """Raise ConfigError unless `value` is a finite number in [0, 8] ((0, 8] without zero):
    the range of the readout's gate and mix exponents."""
    if not (_finite(value) and (value >= 0 if zero_allowed else value > 0) and value <= 8):
        interval = "[0, 8]" if zero_allowed else "(0, 8]"
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}")


def as_name_list(value: Sequence[str] | str) -> list[str]:
    """A string or a sequence of strings as a list."""
    return [value] if isinstance(value, str) else list(value)
