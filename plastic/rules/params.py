"""Rule parameters: documented dataclass fields and JSON-able conversion.

Every rule's parameters are a frozen dataclass deriving from `RuleParams` whose fields are
declared with `param(default, unit=..., doc=...)`. The unit and doc travel with the field,
so `plastic rules` can list them and adapter configs can store `to_dict()` as JSON.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from plastic.errors import RuleError


class ParamSpec(NamedTuple):
    """One parameter of a rule, as listed by `plastic rules`."""

    name: str
    default: Any
    unit: str
    doc: str
    choices: tuple[str, ...] | None


def param(default: Any, *, unit: str, doc: str, choices: tuple[str, ...] | None = None) -> Any:
    """Declare a rule parameter with its default, unit (e.g. "steps", "1") and meaning."""
    return dataclasses.field(
        default=default, metadata={"unit": unit, "doc": doc, "choices": choices}
    )


class RuleParams:
    """Mixin for frozen parameter dataclasses: validation helpers and dict conversion."""

    @classmethod
    def describe(cls) -> list[ParamSpec]:
        """The parameters with defaults, units and meanings, in declaration order."""
        return [
            ParamSpec(
                f.name,
                f.default,
                f.metadata.get("unit", ""),
                f.metadata.get("doc", ""),
                f.metadata.get("choices"),
            )
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        ]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleParams:
        """Build parameters from a JSON-able mapping; unknown names raise RuleError."""
        specs = {spec.name: spec for spec in cls.describe()}
        unknown = sorted(set(data) - set(specs))
        if unknown:
            raise RuleError(
                f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(specs)}"
            )
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = _coerce(cls.__name__, specs[name], value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a flat JSON-able dict (inverse of `from_dict`)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def replace(self, **changes: Any) -> RuleParams:
        """A copy with some parameters changed (validated like the constructor)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _coerce(owner: str, spec: ParamSpec, value: Any) -> Any:
    """Convert a JSON value to the type of the parameter's default, or raise RuleError."""
    default = spec.default
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    raise RuleError(f"{owner}.{spec.name} must be a {type(default).__name__}, got {value!r}")


def require(condition: bool, message: str) -> None:
    """Raise RuleError(message) unless condition holds (parameter validation)."""
    if not condition:
        raise RuleError(message)


def require_positive(owner: str, **values: float) -> None:
    """Raise RuleError unless every value is finite and > 0."""
    for name, value in values.items():
        require(
            math.isfinite(value) and value > 0,
            f"{owner}.{name} must be a finite number > 0, got {value!r}",
        )


def require_non_negative(owner: str, **values: float) -> None:
    """Raise RuleError unless every value is finite and >= 0."""
    for name, value in values.items():
        require(
            math.isfinite(value) and value >= 0,
            f"{owner}.{name} must be a finite number >= 0, got {value!r}",
        )


def require_bounds(owner: str, w_min: float, w_max: float) -> None:
    """Raise RuleError unless w_min < w_max, both finite."""
    require(
        math.isfinite(w_min) and math.isfinite(w_max) and w_min < w_max,
        f"{owner}: need finite w_min < w_max, got w_min={w_min!r}, w_max={w_max!r}",
    )


def require_choice(owner: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise RuleError unless value is one of choices."""
    require(
        value in choices,
        f"{owner}.{name} must be one of {', '.join(choices)}; got {value!r}",
    )
