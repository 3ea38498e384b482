"""`Learner`: a rule, its parameters, a weight matrix and the rule's state, bound together.

The functional API (`rule.step(pre, post, w, state, params) -> (w, state)`) is the core;
this is the thin stateful layer on top, for adapters and notebooks:

    learner = Learner("rstdp", weights, {"learning_rate": 1e-3}, backend="numba")
    learner.step(pre_spikes, post_spikes)     # [n] or [T, n]
    learner.reward(1.0)
    learner.flush()                           # exact weights before a dense read
    saved = learner.state_dict()              # {"rule", "api_version", "params", "state"}

`Learner.for_module(linear, "rstdp")` learns on any torch module's weight parameter in
place (torch's Linear stores [out, in], i.e. post-major: it is viewed transposed).
`flush_every=n` makes the weights exact every n steps for readers that read them densely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from plastic.errors import RuleError
from plastic.kernels_numba.arrays import as_numpy, is_torch_tensor
from plastic.rules.backends import DEFAULT_BACKEND
from plastic.rules.protocol import RULE_API_VERSION, LearningRule
from plastic.rules.registry import get_rule


class Learner:
    """Stateful wrapper: applies one rule to one weight matrix, in place."""

    def __init__(
        self,
        rule: str | LearningRule,
        weights: Any,
        params: Any = None,
        *,
        backend: str = DEFAULT_BACKEND,
        mask: Any = None,
        flush_every: int | None = None,
    ) -> None:
        self.rule: LearningRule = get_rule(rule) if isinstance(rule, str) else rule
        self.params = self._params(params)
        self.weights = weights
        self.backend = backend
        n_pre, n_post = _shape(weights)
        _check_in_bounds(weights, mask, self.params)
        self.state = self.rule.init_state(n_pre, n_post, self.params, backend=backend, mask=mask)
        if flush_every is not None and flush_every < 1:
            raise RuleError(f"flush_every must be >= 1, got {flush_every}")
        self.flush_every = flush_every
        self._since_flush = 0

    @classmethod
    def for_module(
        cls,
        module: Any,
        rule: str | LearningRule,
        params: Any = None,
        *,
        parameter: str = "weight",
        layout: str = "post_major",
        **kwargs: Any,
    ) -> Learner:
        """Learn on `module.<parameter>` in place; layout "post_major" for torch Linear.

        A post-major [n_post, n_pre] tensor is used through its transposed view, so the
        rule still sees pre-major weights (kernels accept any strides; pre-major
        contiguous weights are the fast case).
        """
        tensor = getattr(module, parameter).data
        if layout == "post_major":
            tensor = tensor.T
        elif layout != "pre_major":
            raise RuleError(f"layout must be 'post_major' or 'pre_major', got {layout!r}")
        return cls(rule, tensor, params, **kwargs)

    def _params(self, params: Any) -> Any:
        if params is None:
            return self.rule.Params()
        if isinstance(params, Mapping):
            return self.rule.params_from_dict(params)
        if not isinstance(params, self.rule.Params):
            raise RuleError(f"params for rule {self.rule.name!r} must be {self.rule.Params}")
        return params

    def step(self, pre: Any, post: Any) -> None:
        """Advance one step ([n] spikes) or several ([T, n])."""
        self.weights, self.state = self.rule.step(pre, post, self.weights, self.state, self.params)
        if self.flush_every is not None:
            shape = np.shape(pre)
            self._since_flush += int(shape[0]) if len(shape) == 2 else 1
            if self._since_flush >= self.flush_every:
                self.flush()

    def reward(self, reward: Any) -> None:
        """Apply a reward (third factor); rules without one ignore it."""
        self.weights, self.state = self.rule.apply_reward(
            reward, self.weights, self.state, self.params
        )

    def flush(self, rows: Any = None) -> None:
        """Make the weights exact (all rows, or the selected rows only)."""
        if rows is None:
            self.weights, self.state = self.rule.flush(self.weights, self.state, self.params)
            self._since_flush = 0
        else:
            self.weights, self.state = self.rule.flush(
                self.weights, self.state, self.params, rows=rows
            )

    def state_dict(self) -> dict[str, Any]:
        """Rule id, API version, JSON-able params and the state's numpy arrays (flushes)."""
        self.flush()
        return {
            "rule": self.rule.name,
            "api_version": RULE_API_VERSION,
            "params": self.params.to_dict(),
            "state": self.rule.state_to_dict(self.state),
        }

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (same rule; any backend)."""
        if saved.get("rule") != self.rule.name:
            raise RuleError(
                f"saved state is for rule {saved.get('rule')!r}, not {self.rule.name!r}"
            )
        self.params = self.rule.params_from_dict(saved.get("params", {}))
        self.state = self.rule.state_from_dict(saved["state"], backend=self.backend)
        self._since_flush = 0


def _shape(weights: Any) -> tuple[int, int]:
    shape = tuple(weights.shape)
    if len(shape) != 2:
        raise RuleError(f"weights must be a 2-D [n_pre, n_post] matrix, got shape {shape}")
    return int(shape[0]), int(shape[1])


def _check_in_bounds(weights: Any, mask: Any, params: Any) -> None:
    """Raise RuleError if a plastic synapse starts outside [w_min, w_max]."""
    if is_torch_tensor(weights):
        array = weights.detach().cpu().numpy()
    elif hasattr(weights, "copy_to_host"):
        array = weights.copy_to_host()
    else:
        array = as_numpy(weights)
    outside = (array < params.w_min) | (array > params.w_max)
    if mask is not None:
        outside &= as_numpy(mask) != 0
    if np.any(outside):
        raise RuleError(
            f"{int(outside.sum())} plastic weights lie outside [w_min, w_max] = "
            f"[{params.w_min}, {params.w_max}]; clip them or change the bounds"
        )
