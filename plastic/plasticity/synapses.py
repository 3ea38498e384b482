"""`PlasticSynapses`: one weight matrix, the rule that changes it, and exact snapshots of both.

A thin layer over `plastic.rules.Learner` (which binds a rule, its params, the weights and
the rule's state) that adds what adapters need: reading rows exactly before a forward
pass uses them, snapshots restored bit for bit, and the figures of `/stats`.

Weights are float32 numpy, pre-major `W[n_pre, n_post]`, updated in place by the rule
(so torch views made with `torch.from_numpy` always see the current values). Every other
write goes through `set_weights`, so `DeviceSynapses` (weights on the GPU,
`device_synapses.py`) shares all of this but where the matrix lives.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from plastic.errors import RuleError
from plastic.kernels_numba.threads import with_kernel_threads
from plastic.plasticity.observers import SynapseObserver
from plastic.rules import Learner, get_rule


class SynapseSnapshot(NamedTuple):
    """Weights and rule state at one moment (copies; see `PlasticSynapses.snapshot`)."""

    weights: np.ndarray
    rule_state: dict[str, Any]  # Learner.state_dict(): rule, api_version, params, state


class PlasticSynapses:
    """Weights W[n_pre, n_post] learning under one rule; see the module docstring."""

    def __init__(
        self, rule: str, params: Mapping[str, Any], weights: np.ndarray, *, backend: str
    ) -> None:
        self.rule = get_rule(rule)
        rule_params = self.rule.params_from_dict(dict(params))
        lo, hi = float(rule_params.w_min), float(rule_params.w_max)
        host = np.ascontiguousarray(np.clip(weights, lo, hi), dtype=np.float32)
        self.initial = host.copy()
        self.learner = Learner(self.rule, self._bind(host), rule_params, backend=backend)
        self.backend = backend
        self.w_min, self.w_max = lo, hi
        self._row_flush = getattr(self.rule, "defers_weights", True)  # see rules.protocol
        self._flush_takes_rows = "rows" in inspect.signature(self.rule.flush).parameters
        self._dirty = False  # stepped since the last full flush
        self.observers: list[SynapseObserver] = []  # see plastic.plasticity.observers

    def _bind(self, host: np.ndarray) -> Any:
        """Keep the weight matrix; return what the rule updates in place (here: itself)."""
        self.weights = host
        return host

    def set_weights(self, values: np.ndarray) -> None:
        """W <- values, in place (views of W, e.g. torch.from_numpy, stay valid)."""
        self.weights[...] = values

    @property
    def params(self) -> Any:
        return self.learner.params

    @property
    def uses_reward(self) -> bool:
        return bool(self.rule.uses_reward)

    # -- the per-token path -----------------------------------------------------------
    @with_kernel_threads
    def step(self, pre: np.ndarray, post: np.ndarray) -> None:
        """Advance the rule over pre [T, n_pre] and post [T, n_post] spikes (uint8)."""
        self.learner.step(pre, post)
        self._dirty = True
        for observer in self.observers:
            observer.on_step(pre, post)

    @with_kernel_threads
    def reward(self, value: float) -> None:
        """Apply a reward (ignored by two-factor rules)."""
        self.learner.reward(value)
        for observer in self.observers:
            observer.on_reward(value)

    @with_kernel_threads
    def prepare_rows(self, active: np.ndarray) -> None:
        """Make rows `active` (int64 indices) exact before a forward pass reads them."""
        if not self._row_flush or not self._dirty or active.shape[0] == 0:
            return
        if self._flush_takes_rows:
            self.learner.flush(rows=active)
            for observer in self.observers:
                observer.on_flush_rows(active)
        else:
            self.sync()

    @with_kernel_threads
    def sync(self) -> None:
        """Apply everything deferred: weights and rule state exact (before dense reads)."""
        self.learner.flush()
        self._dirty = False
        for observer in self.observers:
            observer.on_sync()

    # -- snapshots --------------------------------------------------------------------
    @with_kernel_threads
    def snapshot(self) -> SynapseSnapshot:
        """Copies of the weights and the (flushed) rule state."""
        self.sync()
        saved = self.learner.state_dict()
        state = {k: np.array(v, copy=True) for k, v in saved["state"].items()}
        snap = SynapseSnapshot(self.weights.copy(), {**saved, "state": state})
        for observer in self.observers:
            observer.on_snapshot(snap)
        return snap

    @with_kernel_threads
    def restore(self, snap: SynapseSnapshot) -> None:
        """Return to a snapshot exactly (weights bit for bit, rule state as saved)."""
        self.set_weights(snap.weights)
        self.learner.load_state_dict(snap.rule_state)
        self._dirty = False
        for observer in self.observers:
            observer.on_restore(snap)

    @with_kernel_threads
    def reset(self) -> None:
        """Initial weights and a fresh rule state."""
        self.set_weights(self.initial)
        n_pre, n_post = self.initial.shape
        self.learner.state = self.rule.init_state(
            n_pre, n_post, self.learner.params, backend=self.backend
        )
        self._dirty = False
        for observer in self.observers:
            observer.on_reset()

    @with_kernel_threads
    def load(self, weights: np.ndarray, rule_state: Mapping[str, Any]) -> None:
        """Set weights and rule state from saved arrays (shapes checked by the caller)."""
        outside = (weights < self.w_min) | (weights > self.w_max)
        if np.any(outside):
            raise RuleError(
                f"{int(outside.sum())} saved weights lie outside the rule's bounds "
                f"[{self.w_min}, {self.w_max}]"
            )
        self.set_weights(weights)
        self.learner.load_state_dict(
            {"rule": self.rule.name, "params": self.learner.params.to_dict(), "state": rule_state}
        )
        self._dirty = False
        for observer in self.observers:
            observer.on_load()

    # -- figures ----------------------------------------------------------------------
    @with_kernel_threads
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The flushed rule state as numpy arrays (for saving)."""
        self.sync()
        return {k: np.asarray(v) for k, v in self.rule.state_to_dict(self.learner.state).items()}

    @with_kernel_threads
    def eligibility_norm(self) -> float | None:
        """||e||_F of a three-factor rule's eligibility (None if the rule has none)."""
        self.sync()
        state = self.learner.state
        elig = getattr(state, "eligibility", None)
        if elig is None:
            return None
        if hasattr(elig, "copy_to_host"):  # a Numba device array (DeviceSynapses)
            elig = elig.copy_to_host()
        elif not isinstance(elig, np.ndarray):
            elig = np.asarray(elig.detach().cpu()) if hasattr(elig, "detach") else np.asarray(elig)
        return float(np.sqrt(np.sum(np.square(elig, dtype=np.float64))))

    def rule_baseline(self) -> float | None:
        """The rule's own running reward baseline, if it has one."""
        state = self.learner.state
        base = getattr(state, "baseline", None)
        if base is None:
            return None
        return float(base[0]) if isinstance(base, np.ndarray) else float(base)

    def change_norm(self, reference: np.ndarray) -> float:
        """||W - reference||_F (after a sync)."""
        self.sync()
        return float(np.sqrt(np.sum(np.square(self.weights - reference, dtype=np.float64))))

    def cap_change(self, reference: np.ndarray, max_norm: float) -> float | None:
        """Scale W back towards `reference` so ||W - reference||_F <= max_norm.

        Returns the norm before capping when it had to (None otherwise). The result is a
        convex combination of two in-bounds matrices, so it stays within the bounds.
        """
        norm = self.change_norm(reference)
        capped_from = None
        if norm > max_norm:
            factor = np.float32(max_norm / norm)
            capped = reference + (self.weights - reference) * factor
            np.clip(capped, self.w_min, self.w_max, out=capped)
            self.set_weights(capped)
            capped_from = norm
        for observer in self.observers:
            observer.on_cap(reference, max_norm)
        return capped_from

    def scale(self, factor: float) -> None:
        """W <- W * factor in place, clipped to the bounds when they exclude 0 (a readout
        memory's fading). Call `sync()` first where deferred updates are pending."""
        self._scale_weights(np.float32(factor))
        for observer in self.observers:
            observer.on_scale(float(factor))

    def blend(self, begin: np.ndarray, end: np.ndarray, fraction: float) -> None:
        """W = begin + (end - begin) * fraction (the drift guard's back-off of a turn)."""
        for observer in self.observers:  # before: the observer may compare `end` with W
            observer.on_blend(begin, end, fraction)
        self.set_weights(begin + (end - begin) * np.float32(fraction))

    def _scale_weights(self, factor: np.float32) -> None:
        """W <- W * factor in place, then the bounds when they exclude 0 (see `scale`)."""
        weights = self.weights
        np.multiply(weights, factor, out=weights)
        if self.w_min > 0 or self.w_max < 0:  # bounds that exclude 0: towards the nearest
            np.clip(weights, self.w_min, self.w_max, out=weights)


def prepare_rule_kernels(rule: str, params: Mapping[str, Any], backend: str = "numba") -> None:
    """Compile (or load from the on-disk cache) a rule's kernels on a tiny matrix, so that a
    caller can say so while it happens instead of stalling on the first real step."""
    syn = PlasticSynapses(rule, params, np.zeros((2, 2), np.float32), backend=backend)
    spikes = np.zeros((3, 2), np.uint8)
    spikes[1, 0] = 1
    syn.step(spikes, spikes)
    syn.reward(1.0)
    syn.prepare_rows(np.zeros(1, np.int64))
    syn.sync()
