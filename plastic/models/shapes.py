"""The tensor shapes a backbone config implies, derived without building a model its size.

Two tiny reference models, whose sizes are distinct primes, are built once per
architecture; each tensor axis is then read as a constant or k x (vocab, d_model, d_ff,
heads, head width), and the layer-indexed tensors are repeated per layer. The rule is
confirmed against a third reference (two layers) before it is used, so a future layer
kind that does not follow it disables the check instead of rejecting good checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache

from plastic.models.config import ModelConfig

# (vocab_size, n_heads, head width, d_ff, n_layers) of the references: distinct primes.
_REFERENCES = ((53, 5, 7, 41, 1), (59, 3, 11, 43, 1), (61, 2, 13, 47, 2))
_LAYER = re.compile(r"^(blocks)\.(\d+)\.")
Axis = tuple[str, int]  # (symbol, multiplier); symbol "" is a constant


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]] | None:
    """Every state-dict tensor's shape for `cfg`, or None if no rule could be derived."""
    rule = _rule(json.dumps(_fixed_part(cfg).to_dict(), sort_keys=True))
    if rule is None:
        return None
    return _apply(rule, _symbols(cfg), cfg.n_layers)


def _fixed_part(cfg: ModelConfig) -> ModelConfig:
    """The config with the sizes zeroed: the key of the derived rule."""
    return dataclasses.replace(cfg, vocab_size=1, d_model=1, d_ff=1, n_heads=1, n_layers=1)


def _symbols(cfg: ModelConfig) -> dict[str, int]:
    return {
        "": 1,
        "V": cfg.vocab_size,
        "D": cfg.d_model,
        "F": cfg.d_ff,
        "H": cfg.n_heads,
        "E": cfg.d_model // cfg.n_heads,
    }


@lru_cache(maxsize=8)
def _rule(fixed_json: str) -> dict[str, tuple[Axis, ...]] | None:
    import torch

    fixed = ModelConfig(**json.loads(fixed_json))
    from plastic.models.spiking_lm import SpikingLM

    configs, shapes = [], []
    for vocab, heads, width, ff, layers in _REFERENCES:
        cfg = dataclasses.replace(
            fixed, vocab_size=vocab, d_model=heads * width, d_ff=ff, n_heads=heads, n_layers=layers
        )
        with torch.no_grad():
            model = SpikingLM(cfg)
        configs.append(cfg)
        shapes.append({k: tuple(v.shape) for k, v in model.state_dict().items()})
    a, b = shapes[0], shapes[1]
    if set(a) != set(b):
        return None
    sa, sb = _symbols(configs[0]), _symbols(configs[1])
    rule: dict[str, tuple[Axis, ...]] = {}
    for name in a:
        if len(a[name]) != len(b[name]):
            return None
        axes = [_axis(x, y, sa, sb) for x, y in zip(a[name], b[name], strict=True)]
        if any(axis is None for axis in axes):
            return None
        rule[name] = tuple(axes)  # type: ignore[arg-type]
    check = configs[2]
    if _apply(rule, _symbols(check), check.n_layers) != shapes[2]:
        return None
    return rule


def _axis(x: int, y: int, sa: dict[str, int], sb: dict[str, int]) -> Axis | None:
    if x == y:
        return ("", x)
    for symbol in ("V", "D", "F", "H", "E"):
        if x % sa[symbol] == 0 and y % sb[symbol] == 0 and x // sa[symbol] == y // sb[symbol]:
            return (symbol, x // sa[symbol])
    return None


def _apply(
    rule: dict[str, tuple[Axis, ...]], symbols: dict[str, int], n_layers: int
) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for name, axes in rule.items():
        shape = tuple(symbols[s] * k for s, k in axes)
        match = _LAYER.match(name)
        if match is None:
            out[name] = shape
            continue
        for layer in range(n_layers):
            out[f"{match.group(1)}.{layer}.{name[match.end() :]}"] = shape
    return out
