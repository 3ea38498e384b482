"""The contract every learning rule (built-in or plugin) satisfies.

A rule is a module (or any object) with the attributes below. The functions are pure in
the Norse sense: `(input, state, params) -> (output, state)`; params and state are small
immutable records. On the hot paths the *arrays inside* the records (and the weights) are
updated in place, and the same records are returned: treat the inputs as consumed.

Weights are float32, pre-major: `weights[i, j]` is the synapse from presynaptic neuron i
to postsynaptic neuron j. Every rule keeps them in `[params.w_min, params.w_max]` (they
must start there) and caps the size of its updates (each rule documents which norm), so
callers never need to. Rules may defer work (event-driven kernels do): call `flush` before
reading weights densely or saving the state.

Optional facts a rule may declare about itself (read with `getattr`, defaults in brackets):
`defers_weights` [True]: whether its weights can hold deferred work (False: `flush` only
touches traces and eligibility, so weight rows are exact without flushing them);
`adapter_kinds` [None: any]: the adapter kinds that may run it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from plastic.plugins import contract_problems

# Bumped when the protocol changes incompatibly; plugins declare the version they implement.
RULE_API_VERSION = 1


@runtime_checkable
class LearningRule(Protocol):
    """Structural type of a learning rule; see the module docstring for the semantics."""

    name: str  # registry id, stored in adapter configs
    api_version: int  # must equal RULE_API_VERSION
    summary: str  # one line for `plastic rules`
    paper: str  # the reference the equations follow
    uses_reward: bool  # whether apply_reward changes weights (three-factor rules)
    backends: tuple[str, ...]  # subset of ("torch", "numba", "cuda")
    Params: type  # frozen dataclass deriving from plastic.rules.params.RuleParams

    def params_from_dict(self, data: Mapping[str, Any]) -> Any:
        """Params from a JSON-able dict (RuleError on unknown names or bad values)."""
        ...

    def init_state(
        self, n_pre: int, n_post: int, params: Any, *, backend: str = ..., mask: Any = ...
    ) -> Any:
        """A fresh state (zero traces) for a layer of n_pre x n_post synapses."""
        ...

    def step(self, pre: Any, post: Any, weights: Any, state: Any, params: Any) -> Any:
        """Advance one step ([n] spikes) or T steps ([T, n]); returns (weights, state)."""
        ...

    def apply_reward(self, reward: float, weights: Any, state: Any, params: Any) -> Any:
        """Apply a reward (third factor) to the weights; returns (weights, state)."""
        ...

    def flush(self, weights: Any, state: Any, params: Any, rows: Any = ...) -> Any:
        """Apply deferred work so weights and state are exact; returns (weights, state).

        With `rows` (indices, or a selection vector such as this step's pre spikes) only
        those weight rows need to become exact: what a spiking forward pass reads.
        """
        ...

    def state_to_dict(self, state: Any) -> dict[str, Any]:
        """The state as a dict of numpy arrays (flush first); see `state_from_dict`."""
        ...

    def state_from_dict(self, data: Mapping[str, Any], *, backend: str = ...) -> Any:
        """Rebuild a state saved by `state_to_dict`, on any backend."""
        ...


REQUIRED_ATTRIBUTES = (
    "name",
    "api_version",
    "summary",
    "paper",
    "uses_reward",
    "backends",
    "Params",
    "params_from_dict",
    "init_state",
    "step",
    "apply_reward",
    "flush",
    "state_to_dict",
    "state_from_dict",
)


def protocol_problems(rule: object) -> list[str]:
    """What keeps `rule` from satisfying LearningRule (empty list when it does)."""
    callables = ("params_from_dict", "init_state", "step", "apply_reward", "flush")
    note = " (the rule was written for another version of plastic)"
    problems = contract_problems(rule, REQUIRED_ATTRIBUTES, RULE_API_VERSION, callables, note)
    if problems and problems[0].startswith("missing"):
        return problems
    if not isinstance(getattr(rule, "backends", None), tuple):
        problems.append("backends must be a tuple of backend names")
    return problems
