"""`MemoryTap`: the recorder's observer on a context memory (`plastic.plasticity.memory`).

The memory's learning is a deterministic function of what its live reads are given (the
tokens, the logits the backbone returned for them, whether they are learnt from or the
model's own reply), its stream boundaries, `/good` / `/bad` credit and the engine's
operations on its state (snapshots and restores for `/undo` and the drift guard's revert,
the per-turn cap, the drift guard's blend, reset, load). The tap logs each as an event
(MEMORY_READ with the read's rows of `read_id` / `read_logits`, FORGET, and the events a
`SiteTap` logs for the rest) and writes the memory's variable-size state as safetensors
blobs (`plastic.replay.memory_state`) for saved states and checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from plastic.replay import schema as S
from plastic.replay.memory_state import REWARD_PREFIX, encode_state
from plastic.replay.site_tap import SiteTap

if TYPE_CHECKING:
    from plastic.plasticity.memory import MemoryLayer, MemorySynapses

# reads handed to the writer once this many rows are buffered (a long pasted text is not
# held in memory until its turn ends: ~4 MiB of logits rows at the shipped vocabulary)
FLUSH_ROWS = 4096


class MemoryTap(SiteTap):
    """Buffers a memory's reads and logs its operations; see the module docstring."""

    def __init__(self, recorder: Any, spec: S.SiteSpec, synapses: Any, adapter: Any) -> None:
        super().__init__(recorder, spec, synapses, adapter)
        self.layer: MemoryLayer = adapter.layers[spec.site]
        self.state_bytes = 0  # bytes of state_blob recorded (committed + pending)
        self.checkpoint_bytes = 0
        self._ids: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []
        self._buffered = 0  # rows in _ids / _logits

    def _new_buffers(self) -> None:
        """A memory has no rasters (its reads are buffered as they come)."""

    def attach(self) -> None:
        self.synapses.observers.append(self)
        self.layer.observers.append(self)

    def detach(self) -> None:
        for observers in (self.synapses.observers, self.layer.observers):
            if self in observers:
                observers.remove(self)

    def restore_counts(self, counts: dict[str, int]) -> None:
        super().restore_counts(counts)
        self.state_bytes = int(counts["state_bytes"])
        self.checkpoint_bytes = int(counts["checkpoint_bytes"])

    # -- MemoryLayer observer ---------------------------------------------------------
    def on_read(self, tokens: np.ndarray, logits: np.ndarray, learn: bool, gen: bool) -> None:
        n = len(tokens)
        if logits.shape[-1] != self.spec.n_post:
            self.recorder.fail(f"site {self.spec.key}: logits of width {logits.shape[-1]}")
            return
        self._ids.append(np.asarray(tokens, np.uint16).copy())
        self._logits.append(np.array(logits[:n], np.float32, copy=True))
        flags = (S.READ_LEARN if learn else 0) | (S.READ_GENERATING if gen else 0)
        self._event(S.MEMORY_READ, self.steps, n, float(flags))
        self.steps += n
        self._buffered += n
        if self._buffered >= FLUSH_ROWS:
            self.flush_steps()

    def on_forget(self) -> None:
        self._event(S.FORGET)

    # -- to the writer ----------------------------------------------------------------
    def flush_steps(self) -> None:
        """Hand the buffered reads to the writer (at a commit, or FLUSH_ROWS of them)."""
        if not self._ids:
            return
        writer, group = self.recorder.writer, self.spec.group
        writer.append(f"{group}/read_id", np.concatenate(self._ids))
        writer.append(f"{group}/read_logits", np.concatenate(self._logits))
        self._ids, self._logits, self._buffered = [], [], 0

    def state(self, *, initial: bool = False, weights: np.ndarray | None = None) -> dict:
        """The memory's state arrays and its adapter's reward states (initial: a fresh
        memory's, reward states zeroed; weights: this weight vector in the current tables,
        synapses it lacks at 0, as `MemorySynapses.blend` aligns them)."""
        syn: MemorySynapses = self.synapses
        source = type(syn)(syn.memory) if initial else syn
        arrays = source.state_arrays()
        if weights is not None:
            mixer = arrays["mixer"]
            n_syn = len(weights) - mixer.size
            syn_weight = np.zeros_like(arrays["syn_weight"])
            k = min(n_syn, len(syn_weight))
            syn_weight[:k] = weights[:k]
            arrays["syn_weight"] = syn_weight
            arrays["mixer"] = np.asarray(weights[n_syn:], np.float64).reshape(mixer.shape)
        for key, value in self.adapter.rewards.state_arrays().items():
            value = np.asarray(value)
            arrays[REWARD_PREFIX + key] = np.zeros_like(value) if initial else value
        return arrays

    def save_state(self, *, initial: bool = False, weights: np.ndarray | None = None) -> None:
        """Queue one saved state (see `state`) as a blob of state_blob."""
        blob = encode_state(self.state(initial=initial, weights=weights))
        self.state_bytes += blob.size
        self.recorder.writer.append(f"{self.spec.group}/state_blob", blob)
        self.recorder.writer.append(
            f"{self.spec.group}/state_end", np.asarray([self.state_bytes], np.int64)
        )

    def save_checkpoint(self) -> None:
        """Queue one checkpoint of the memory's state as a blob of checkpoint_blob."""
        blob = encode_state(self.synapses.state_arrays())
        self.checkpoint_bytes += blob.size
        self.recorder.writer.append(f"{self.spec.group}/checkpoint_blob", blob)
        self.recorder.writer.append(
            f"{self.spec.group}/checkpoint_end", np.asarray([self.checkpoint_bytes], np.int64)
        )

    def matches_checkpoint(self, index: int) -> bool:
        """Whether the memory is exactly at the store's checkpoint `index` (a continued
        session that goes on from where the last one ended)."""
        from plastic.errors import TraceError
        from plastic.replay.memory_state import decode_state, max_abs_diff

        root, group = self.recorder.root, self.spec.group
        try:
            ends = np.asarray(root[f"{group}/checkpoint_end"][: index + 1])
            start = int(ends[index - 1]) if index > 0 else 0
            blob = np.asarray(root[f"{group}/checkpoint_blob"][start : int(ends[index])])
            recorded = decode_state(blob, str(self.recorder.path))
        except (TraceError, IndexError, ValueError):
            return False
        return max_abs_diff(recorded, self.synapses.state_arrays()) == 0.0

    def commit_counts(self) -> dict[str, int]:
        return {
            "steps": self.steps,
            "rows": 0,
            "state_bytes": self.state_bytes,
            "checkpoint_bytes": self.checkpoint_bytes,
        }
