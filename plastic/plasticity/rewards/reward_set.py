"""`RewardSet`: the reward sources of one adapter, bound to their parameters and states.

An adapter names its sources in `AdapterConfig.reward`; their rewards for one event are
summed (None when no source gave one, so nothing is applied). States are immutable
records, so a snapshot of a RewardSet is just the tuple of its states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from plastic.errors import CheckpointError
from plastic.plasticity.rewards.protocol import RewardSource, TokenEvent
from plastic.plasticity.rewards.registry import get_reward


class RewardSet:
    """Named reward sources with their params and states; see the module docstring."""

    def __init__(self, names: Sequence[str], params: Mapping[str, Mapping[str, Any]]) -> None:
        self.names = tuple(names)
        self.sources: tuple[RewardSource, ...] = tuple(get_reward(n) for n in self.names)
        self.params = tuple(
            s.params_from_dict(dict(params.get(n, {})))
            for n, s in zip(self.names, self.sources, strict=True)
        )
        self.states: tuple[Any, ...] = ()
        self.last: dict[str, float] = {}  # last reward per source, for /stats
        self.reset()

    def reset(self) -> None:
        """Fresh states (running statistics forgotten)."""
        self.states = tuple(s.init_state(p) for s, p in zip(self.sources, self.params, strict=True))
        self.last = {}

    @property
    def uses_feedback(self) -> bool:
        return "feedback" in self.names

    def on_token(self, event: TokenEvent) -> float | None:
        """The summed reward of one token (None: no source gave one)."""
        return self._summed(lambda source, state, params: source.on_token(event, state, params))

    def on_feedback(self, value: float) -> float | None:
        """The summed reward of a /good (+1) or /bad (-1); None if no source used it."""
        value = float(value)
        return self._summed(lambda source, state, params: source.on_feedback(value, state, params))

    def _summed(self, call: Callable[[RewardSource, Any, Any], tuple[Any, Any]]) -> float | None:
        """Sum of `call(source, state, params)`'s rewards over the sources, whose states it
        advances (None: no source gave a reward)."""
        total: float | None = None
        states = list(self.states)
        for k, source in enumerate(self.sources):
            reward, states[k] = call(source, states[k], self.params[k])
            if reward is not None:
                reward = float(reward)
                self.last[self.names[k]] = reward
                total = reward if total is None else total + reward
        self.states = tuple(states)
        return total

    def baselines(self) -> dict[str, float]:
        """Each source's running baseline (e.g. surprise's mean bits), where it has one."""
        out = {}
        for name, source, state in zip(self.names, self.sources, self.states, strict=True):
            fn = getattr(source, "baseline", None)
            if callable(fn):
                out[name] = float(fn(state))
        return out

    def snapshot(self) -> tuple[tuple[Any, ...], dict[str, float]]:
        return self.states, dict(self.last)

    def restore(self, snap: tuple[tuple[Any, ...], dict[str, float]]) -> None:
        self.states, last = snap
        self.last = dict(last)

    def params_dict(self) -> dict[str, dict[str, Any]]:
        """The effective parameters of every source (JSON-able)."""
        return {n: p.to_dict() for n, p in zip(self.names, self.params, strict=True)}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every source's state as numpy arrays, keyed "<source>.<key>"."""
        out = {}
        for name, source, state in zip(self.names, self.sources, self.states, strict=True):
            for key, value in source.state_to_dict(state).items():
                out[f"{name}.{key}"] = np.asarray(value)
        return out

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore states saved by `state_arrays` (CheckpointError if one is missing/bad)."""
        states = []
        for name, source in zip(self.names, self.sources, strict=True):
            prefix = name + "."
            data = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            try:
                states.append(source.state_from_dict(data))
            except Exception as exc:
                raise CheckpointError(
                    f"reward state of {name!r} is missing or bad ({exc})"
                ) from None
        self.states = tuple(states)
