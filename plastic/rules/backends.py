"""Backend names and the conversion of caller arrays (spikes, weights, masks) for each backend.

- "torch": the dense torch reference (readable ground truth; any torch device).
- "numba": event-driven Numba CPU kernels over numpy arrays (default).
- "cuda":  Numba CUDA kernels with the same semantics, over device arrays.

Weights are never copied: a numpy array, a torch CPU tensor (via `.numpy()`) or, for
"cuda", any `__cuda_array_interface__` object is updated in place, so an adapter that
shares W with torch through `torch.from_numpy` sees every update.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

import numpy as np

from plastic.errors import RuleError
from plastic.kernels_numba.arrays import connectivity_mask, is_torch_tensor
from plastic.kernels_numba.state_io import StateFormat

BACKENDS = ("torch", "numba", "cuda")
DEFAULT_BACKEND = "numba"


def check_backend(backend: str, supported: tuple[str, ...], rule: str) -> str:
    """Return `backend` if the rule supports it, else raise RuleError."""
    if backend not in BACKENDS:
        raise RuleError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend not in supported:
        raise RuleError(f"rule {rule!r} has no {backend!r} backend (it has {', '.join(supported)})")
    return backend


def host_backend(backend: str) -> str:
    """Where work learnt on `backend` is rerun by default (a saved adapter loaded, a trace
    replayed): the CPU kernels for "cuda" (they agree to 1e-6,
    tests/replay/test_replay_cuda.py), so it runs on any machine; else `backend`."""
    return DEFAULT_BACKEND if backend == "cuda" else backend


def check_sizes(n_pre: int, n_post: int) -> None:
    """Raise RuleError unless both layer sizes are positive integers."""
    if int(n_pre) != n_pre or int(n_post) != n_post or n_pre < 1 or n_post < 1:
        raise RuleError(f"layer sizes must be positive integers, got {n_pre} x {n_post}")


def reward_value(reward: Any) -> float:
    """A plain finite float from a reward (python, numpy or torch scalar; never keeps a graph)."""
    if is_torch_tensor(reward):
        reward = reward.detach().cpu().numpy()
    try:
        value = float(np.asarray(reward, dtype=np.float64).reshape(()))
    except (TypeError, ValueError) as exc:
        raise RuleError(f"reward must be a real scalar, got {reward!r}") from exc
    if not np.isfinite(value):
        raise RuleError(f"reward must be finite, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class RuleImplementations:
    """Where one rule's three backends live, and its Numba state layout: the one dispatch
    every rule's `init_state`, `backend_of`, `state_to_dict` and `state_from_dict` go
    through. Backend modules are named by their full dotted path and imported on first use
    (so a rule imports only the backend it runs; Numba's CUDA code is slow to import).

    reference: torch module with `init_state(n_pre, n_post, params, mask, device)`, `run`,
        `to_dict` and `from_dict`;
    cpu / cuda: Numba kernel modules (`step`, ...; the CUDA one also `to_device(state)`);
    state: the Numba state layout with its constructor and (de)serialisers
        (`plastic.kernels_numba.state_io.TIMING`, `ELIGIBILITY` or `RATE`).

    A rule module exposes the bound methods as its own functions (`init_state =
    IMPLEMENTATIONS.init_state`, ...): the protocol's signatures, with its defaults.
    """

    rule: str
    supported: tuple[str, ...]
    reference: str
    cpu: str
    cuda: str
    state: StateFormat

    def init_state(
        self,
        n_pre: int,
        n_post: int,
        params: Any,
        *,
        backend: str = DEFAULT_BACKEND,
        mask: Any = None,
        device: Any = None,
    ) -> Any:
        """A fresh state for n_pre x n_post synapses on `backend`: the torch reference's, or
        the Numba layout (on the GPU for "cuda"); `mask` [n_pre, n_post] marks plastic ones."""
        check_sizes(n_pre, n_post)
        check_backend(backend, self.supported, self.rule)
        if backend == "torch":
            return self.reference_module().init_state(n_pre, n_post, params, mask, device)
        state = self.state.new_state(n_pre, n_post, connectivity_mask(mask, n_pre, n_post))
        return self.kernels("cuda").to_device(state) if backend == "cuda" else state

    def backend_of(self, state: Any) -> str:
        """Which backend a state belongs to: the Numba layout holding numpy arrays is
        "numba", holding device arrays "cuda"; anything else is "torch"."""
        if isinstance(state, self.state.layout):
            on_host = isinstance(getattr(state, self.state.array_field), np.ndarray)
            return "numba" if on_host else "cuda"
        return "torch"

    def reference_module(self) -> ModuleType:
        return importlib.import_module(self.reference)

    def kernels(self, backend: str) -> ModuleType:
        """The Numba kernel module of "numba" (CPU) or "cuda"."""
        return importlib.import_module(self.cpu if backend == "numba" else self.cuda)

    def state_to_dict(self, state: Any) -> dict[str, np.ndarray]:
        """The state as numpy arrays, the same keys for every backend, so a state saved from
        one loads into another. Event states must be flushed first (RuleError otherwise):
        nothing deferred is saved."""
        if self.backend_of(state) == "torch":
            return self.reference_module().to_dict(state)
        return self.state.to_dict(state)

    def state_from_dict(
        self, data: Any, *, backend: str = DEFAULT_BACKEND, device: Any = None
    ) -> Any:
        """Rebuild a state saved by `state_to_dict` on any backend."""
        check_backend(backend, self.supported, self.rule)
        if backend == "torch":
            return self.reference_module().from_dict(data, device)
        state = self.state.from_dict(data)
        return self.kernels("cuda").to_device(state) if backend == "cuda" else state
