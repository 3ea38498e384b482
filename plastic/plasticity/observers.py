"""Observers: how a recorder (e.g. `plastic.replay`) sees everything that changes adapters.

Two lists, empty unless something listens (an empty loop per call costs nothing):

- `PlasticSynapses.observers` (`SynapseObserver`): called with the *exact* arguments of
  every operation that changes a weight matrix or its rule state, after it ran: rule
  steps and rewards, syncs and row flushes (they touch lazily kept state), snapshots and
  restores, the per-turn cap, the drift guard's blend, a memory's fading (scale), reset
  and load.
- `PlasticModel.observers` (`LearningObserver`): the token stream and the turn level:
  each live forward pass (its tokens, phase and learning flag), each token entering the
  stream (with its surprise when it was learnt from), and the engine's turn begin/end,
  feedback, undo and reset.

Replaying the synapse calls in order on a fresh `PlasticSynapses` with the same rule and
backend reproduces the weights exactly. The package under observation never imports its
observers: this module only defines the no-op base classes they subclass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from plastic.plasticity.synapses import SynapseSnapshot


class SynapseObserver:
    """No-op base: override what you need. Arrays are the caller's (copy what you keep)."""

    def on_step(self, pre: np.ndarray, post: np.ndarray) -> None:
        """`step(pre, post)` ran (pre [T, n_pre], post [T, n_post], uint8)."""

    def on_reward(self, value: float) -> None:
        """`reward(value)` ran."""

    def on_sync(self) -> None:
        """`sync()` ran (deferred work and lazily decayed state made exact)."""

    def on_flush_rows(self, rows: np.ndarray) -> None:
        """`prepare_rows` flushed the rows `rows` (int64)."""

    def on_snapshot(self, snap: SynapseSnapshot) -> None:
        """`snapshot()` returned `snap` (its `weights` array identifies it)."""

    def on_restore(self, snap: SynapseSnapshot) -> None:
        """`restore(snap)` ran."""

    def on_reset(self) -> None:
        """`reset()` ran: initial weights, fresh rule state."""

    def on_load(self) -> None:
        """`load(weights, rule_state)` ran (weights and state set from outside)."""

    def on_cap(self, reference: np.ndarray, max_norm: float) -> None:
        """`cap_change(reference, max_norm)` ran (whether or not it had to scale)."""

    def on_scale(self, factor: float) -> None:
        """`scale(factor)` ran (W <- W * factor, clipped to the bounds: a memory's fading)."""

    def on_blend(self, begin: np.ndarray, end: np.ndarray, fraction: float) -> None:
        """`blend(begin, end, fraction)` is about to set W = begin + (end - begin) * fraction
        (called before the write, so that W can still be compared with `end`)."""


class LearningObserver:
    """No-op base for the token stream and turn level of a `PlasticModel`."""

    def on_forward(self, tokens: list[int], phase: str, learning: bool) -> None:
        """A live forward pass over `tokens` begins (phase "observe" or "generate")."""

    def on_token(self, token: int, bits: float) -> None:
        """`token` entered the stream; `bits` is its surprise if it was learnt from, else NaN."""

    def on_turn_begin(self) -> None:
        """`LearningEngine.begin_turn` took the turn's snapshot."""

    def on_turn_end(self, report: Any) -> None:
        """`LearningEngine.end_turn` finished (guards applied); `report` is its TurnReport."""

    def on_feedback(self, value: float) -> None:
        """`LearningEngine.feedback(value)` begins (/good +1, /bad -1)."""

    def on_undo(self) -> None:
        """`LearningEngine.undo` finished."""

    def on_reset(self) -> None:
        """`LearningEngine.reset` finished."""
