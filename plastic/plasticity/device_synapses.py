"""`DeviceSynapses`: `PlasticSynapses` whose weights and rule state live on the GPU.

The weight matrix and every array of the rule's state are Numba CUDA device arrays; each
step, reward and flush runs the rule's CUDA kernels (`plastic/kernels_numba/cuda_*.py`,
through the rules' "cuda" backend) on them in place, so learning moves no matrix between
host and device: per call only the step's spikes go over (and, for a norm-capped reward,
one float per row comes back). Everything else - snapshots, restores, the cap, the drift
guard's blend, saving - is `PlasticSynapses`' own code: it reads `weights` and writes
through `set_weights`, which this class maps onto the device.

`weights` here is a read-only host *mirror*, copied from the device when something asked
for it after the device weights changed; writing into it raises instead of being lost.
Under NUMBA_ENABLE_CUDASIM=1 the same code runs in Numba's simulator (the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from plastic.plasticity.synapses import PlasticSynapses, SynapseSnapshot


class DeviceSynapses(PlasticSynapses):
    """Weights W[n_pre, n_post] on the GPU learning under one rule (module docstring)."""

    def __init__(
        self, rule: str, params: Mapping[str, Any], weights: np.ndarray, *, backend: str = "cuda"
    ) -> None:
        self._mirror: np.ndarray | None = None
        super().__init__(rule, params, weights, backend="cuda")

    def _bind(self, host: np.ndarray) -> Any:
        from numba import cuda

        self.device_weights = cuda.to_device(host)
        self._mirror = None
        return self.device_weights

    @property
    def weights(self) -> np.ndarray:  # type: ignore[override]
        """A read-only host copy of the current device weights."""
        if self._mirror is None:
            mirror = self.device_weights.copy_to_host()
            mirror.flags.writeable = False
            self._mirror = mirror
        return self._mirror

    def set_weights(self, values: np.ndarray) -> None:
        host = np.ascontiguousarray(np.broadcast_to(values, self.initial.shape), np.float32)
        self.device_weights.copy_to_device(host)
        self._mirror = None

    def _scale_weights(self, factor: np.float32) -> None:
        scaled = np.multiply(self.weights, factor)
        if self.w_min > 0 or self.w_max < 0:
            np.clip(scaled, self.w_min, self.w_max, out=scaled)
        self.set_weights(scaled)

    # every call that runs kernels on the device weights makes the mirror stale
    def step(self, pre: np.ndarray, post: np.ndarray) -> None:
        super().step(pre, post)
        self._mirror = None

    def reward(self, value: float) -> None:
        super().reward(value)
        self._mirror = None

    def prepare_rows(self, active: np.ndarray) -> None:
        super().prepare_rows(active)
        self._mirror = None

    def sync(self) -> None:
        super().sync()
        self._mirror = None

    def restore(self, snap: SynapseSnapshot) -> None:
        super().restore(snap)
        self._mirror = None


def make_synapses(
    rule: str, params: Mapping[str, Any], weights: np.ndarray, *, backend: str
) -> PlasticSynapses:
    """Synapses for `backend`: on the GPU for "cuda", else on the host."""
    cls = DeviceSynapses if backend == "cuda" else PlasticSynapses
    return cls(rule, params, weights, backend=backend)
