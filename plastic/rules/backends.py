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

BACKENDS = ("torch", "numba", "cuda")
DEFAULT_BACKEND = "numba"


def check_backend(backend: str, supported: tuple[str, ...], rule: str) -> str:
    """Return `backend` if the rule supports it, else raise RuleError."""
    if backend not in BACKENDS:
        raise RuleError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend not in supported:
        raise RuleError(f"rule {rule!r} has no {backend!r} backend (it has {', '.join(supported)})")
    return backend


def is_torch_tensor(x: Any) -> bool:
    """True for torch tensors, without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def as_numpy(x: Any) -> np.ndarray:
    """A numpy view of an array-like (torch CPU tensors are viewed, not copied)."""
    if is_torch_tensor(x):
        if x.device.type != "cpu":
            raise RuleError(f"this backend needs CPU arrays, got a tensor on {x.device}")
        return x.detach().numpy()
    return np.asarray(x)


def spikes_as_steps(spikes: Any, n: int, what: str, steps: int | None = None) -> np.ndarray:
    """Spikes [n] or [T, n] (bool, int or float; any strides) as C-contiguous uint8 [T, n].

    Nonzero means "spiked". With `steps`, T must equal it (pre and post cover the same steps).
    """
    array = as_numpy(spikes)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n:
        raise RuleError(f"{what} spikes must have shape [{n}] or [T, {n}], got {array.shape}")
    if steps is not None and array.shape[0] != steps:
        raise RuleError(
            f"pre and post spikes cover different numbers of steps: {steps} vs {array.shape[0]}"
        )
    if array.dtype == np.uint8 or array.dtype == np.bool_:
        return np.ascontiguousarray(array).view(np.uint8)
    return np.ascontiguousarray(array != 0).view(np.uint8)


def activity_as_steps(activity: Any, n: int, what: str, steps: int | None = None) -> np.ndarray:
    """Activities (spikes or rates) [n] or [T, n] as C-contiguous float32 [T, n]."""
    array = as_numpy(activity)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != n:
        raise RuleError(f"{what} activity must have shape [{n}] or [T, {n}], got {array.shape}")
    if steps is not None and array.shape[0] != steps:
        raise RuleError(
            f"pre and post activity cover different numbers of steps: {steps} vs {array.shape[0]}"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def weights_as_numpy(weights: Any, n_pre: int, n_post: int) -> np.ndarray:
    """The caller's float32 [n_pre, n_post] weights as a writable numpy view (no copy)."""
    array = as_numpy(weights)
    if array.dtype != np.float32:
        raise RuleError(f"weights must be float32, got {array.dtype}")
    if array.shape != (n_pre, n_post):
        raise RuleError(
            f"weights must be pre-major [n_pre, n_post] = [{n_pre}, {n_post}], got {array.shape}"
        )
    if not array.flags.writeable:
        raise RuleError("weights must be writable (they are updated in place)")
    return array


def row_indices(rows: Any, n_pre: int) -> np.ndarray:
    """Selected rows as int64 indices.

    `rows` is either a selection vector [n_pre] of dtype bool, uint8 or float (nonzero =
    selected, e.g. this step's pre spikes) or integer indices of any other integer dtype.
    """
    array = as_numpy(rows)
    if array.dtype == np.bool_ or array.dtype == np.uint8 or array.dtype.kind == "f":
        if array.shape != (n_pre,):
            raise RuleError(f"a row selection vector must have shape [{n_pre}], got {array.shape}")
        return np.flatnonzero(array).astype(np.int64)
    if array.dtype.kind not in "iu":
        raise RuleError(f"rows must be indices or a selection vector, got dtype {array.dtype}")
    indices = array.astype(np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= n_pre):
        raise RuleError(
            f"row indices must lie in [0, {n_pre}), got {indices.min()}..{indices.max()}"
        )
    return np.unique(indices)


def connectivity_mask(mask: Any, n_pre: int, n_post: int) -> np.ndarray:
    """A uint8 mask [n_pre, n_post] (1 = plastic synapse), or ones [1, n_post] if mask is None.

    Masked-out synapses (0) never change and never accumulate eligibility. The [1, n_post]
    all-ones row stands for "fully connected" without storing n_pre x n_post bytes.
    """
    if mask is None:
        return np.ones((1, n_post), dtype=np.uint8)
    array = as_numpy(mask)
    if array.shape != (n_pre, n_post):
        raise RuleError(f"mask must have shape [{n_pre}, {n_post}], got {array.shape}")
    return np.ascontiguousarray(array != 0).view(np.uint8)


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
    """Where one rule's three backends live, named and imported on first use (so a rule
    imports only the backend it runs), and its Numba state layout: the one dispatch every
    rule's `init_state`, `backend_of`, `state_to_dict` and `state_from_dict` go through.

    reference: torch module with `init_state(n_pre, n_post, params, mask, device)`, `run`,
        `to_dict` and `from_dict`;
    cpu / cuda: Numba kernel modules (`step`, ...; the CUDA one also `to_device(state)`);
    layout: the `plastic.kernels_numba.state_layout` record (e.g. "TimingState"), its
        constructor (e.g. "new_timing_state") and a field holding arrays (e.g. "x_pre");
    state_io: prefix of the `plastic.kernels_numba.state_io` (de)serialisers ("timing").
    """

    rule: str
    supported: tuple[str, ...]
    reference: str
    cpu: str
    cuda: str
    layout: str
    layout_factory: str
    layout_field: str
    state_io: str

    def init_state(
        self, n_pre: int, n_post: int, params: Any, *, backend: str, mask: Any, device: Any
    ) -> Any:
        """A fresh state on `backend`: the torch reference's, or the Numba layout (on the
        GPU for "cuda")."""
        check_sizes(n_pre, n_post)
        check_backend(backend, self.supported, self.rule)
        if backend == "torch":
            return self.reference_module().init_state(n_pre, n_post, params, mask, device)
        from plastic.kernels_numba import state_layout

        factory = getattr(state_layout, self.layout_factory)
        state = factory(n_pre, n_post, connectivity_mask(mask, n_pre, n_post))
        return self.kernels("cuda").to_device(state) if backend == "cuda" else state

    def backend_of(self, state: Any) -> str:
        """Which backend a state belongs to: the Numba layout holding numpy arrays is
        "numba", holding device arrays "cuda"; anything else is "torch"."""
        from plastic.kernels_numba import state_layout

        if isinstance(state, getattr(state_layout, self.layout)):
            return "numba" if isinstance(getattr(state, self.layout_field), np.ndarray) else "cuda"
        return "torch"

    def reference_module(self) -> ModuleType:
        return importlib.import_module(self.reference)

    def kernels(self, backend: str) -> ModuleType:
        """The Numba kernel module of "numba" (CPU) or "cuda"."""
        return importlib.import_module(self.cpu if backend == "numba" else self.cuda)

    def state_to_dict(self, state: Any) -> dict[str, np.ndarray]:
        """The state as numpy arrays, the same keys for every backend."""
        if self.backend_of(state) == "torch":
            return self.reference_module().to_dict(state)
        from plastic.kernels_numba import state_io

        return getattr(state_io, f"{self.state_io}_to_dict")(state)

    def state_from_dict(self, data: Any, *, backend: str, device: Any) -> Any:
        """Rebuild a state saved by `state_to_dict` on any backend."""
        check_backend(backend, self.supported, self.rule)
        if backend == "torch":
            return self.reference_module().from_dict(data, device)
        from plastic.kernels_numba import state_io

        state = getattr(state_io, f"{self.state_io}_from_dict")(data)
        return self.kernels("cuda").to_device(state) if backend == "cuda" else state
