"""`SiteTap`: the recorder's observer on one adapter site's synapses (buffers the rasters
the rule steps read, logs every operation as an event); `TraceRecorder` drives it."""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING

import numpy as np

from plastic.plasticity.observers import SynapseObserver
from plastic.replay import schema as S
from plastic.replay.store import ensure_state_arrays

if TYPE_CHECKING:
    from plastic.plasticity.adapter import Adapter
    from plastic.plasticity.synapses import PlasticSynapses, SynapseSnapshot
    from plastic.replay.recorder import TraceRecorder


class SiteTap(SynapseObserver):
    """The recorder's observer on one site's synapses: buffers rasters, logs events."""

    def __init__(
        self,
        recorder: TraceRecorder,
        spec: S.SiteSpec,
        synapses: PlasticSynapses,
        adapter: Adapter,
    ):
        self.recorder = recorder
        self.spec = spec
        self.synapses = synapses
        self.adapter = adapter  # its reward state and the site's context signature are saved
        self.index = spec.index
        # a layer that feeds the backbone steps while its token is read; a reader of the
        # logits steps on the transition to the next token
        self.steps_on_current_token = bool(adapter.layers[spec.site].feeds_backbone)
        self.steps = 0  # steps recorded (committed + pending)
        self.rows = 0  # flush rows recorded
        self._pre = self._post = self._tok = None
        self._n = 0  # rows in the current buffer
        self._new_buffers()
        self._rows: list[np.ndarray] = []
        self._slots: dict[int, int] = {}  # id(array) -> slot (snapshots and marks)
        self._snapshot_slots: set[int] = set()  # the slots that hold whole snapshots
        self._next_slot = 0

    def _new_buffers(self) -> None:
        t, n_pre, n_post = self.spec.timesteps, self.spec.n_pre, self.spec.n_post
        self._pre = np.zeros((S.STEP_CHUNK, t, n_pre), np.bool_)
        self._post = np.zeros((S.STEP_CHUNK, t, n_post), np.bool_)
        self._tok = np.zeros(S.STEP_CHUNK, np.int64)
        self._n = 0

    def _event(self, kind: int, a: int = -1, b: int = -1, value: float = math.nan) -> None:
        self.recorder.log_event(kind, self.index, a, b, value)

    # -- SynapseObserver ------------------------------------------------------------
    def on_step(self, pre: np.ndarray, post: np.ndarray) -> None:
        rec = self.recorder
        if pre.shape[0] != self.spec.timesteps:
            rec.fail(f"site {self.spec.key}: a rule step of {pre.shape[0]} timesteps")
            return
        n = self._n
        np.not_equal(pre, 0, out=self._pre[n])
        np.not_equal(post, 0, out=self._post[n])
        token = rec.tokens - 1 if self.steps_on_current_token else rec.tokens
        self._tok[n] = token
        self._event(S.STEP, self.steps)
        self.steps += 1
        self._n = n + 1
        if self._n == S.STEP_CHUNK:
            self.flush_steps()

    def on_reward(self, value: float) -> None:
        self._event(S.REWARD, value=float(value))
        self.recorder.token_reward(self.index, float(value))

    def on_sync(self) -> None:
        self._event(S.SYNC)

    def on_flush_rows(self, rows: np.ndarray) -> None:
        rows = np.array(rows, dtype=np.int64, copy=True)
        self._event(S.FLUSH_ROWS, self.rows, len(rows))
        self._rows.append(rows)
        self.rows += len(rows)

    def on_snapshot(self, snap: SynapseSnapshot) -> None:
        slot = self._new_slot(snap.weights)
        self._snapshot_slots.add(slot)
        self._event(S.SNAPSHOT, slot)

    def on_restore(self, snap: SynapseSnapshot) -> None:
        slot = self._slots.get(id(snap.weights))
        if slot not in self._snapshot_slots:  # never seen, or only its weights (a mark)
            self.recorder.load_state(self)  # a snapshot we never saw: record the result
        else:
            self._event(S.RESTORE, slot)

    def on_reset(self) -> None:
        self._event(S.RESET)

    def on_load(self) -> None:
        self.recorder.load_state(self)

    def on_cap(self, reference: np.ndarray, max_norm: float) -> None:
        slot = self._slots.get(id(reference))
        if slot is None:
            self.recorder.load_state(self)
        else:
            self._event(S.CAP, slot, value=float(max_norm))

    def on_scale(self, factor: float) -> None:
        self._event(S.SCALE, value=float(factor))

    def on_blend(self, begin: np.ndarray, end: np.ndarray, fraction: float) -> None:
        """Called before the write. `end` (the drift guard's copy of the turn's end
        weights) gets a slot when first seen: MARK copies W in replay, so if W differs
        from `end` now, W is first set to `end` by a LOAD (the rule state is unchanged)."""
        begin_slot = self._slots.get(id(begin))
        if begin_slot is None:
            self.recorder.load_state(self, begin)
            begin_slot = self._new_slot(begin)
            self._event(S.MARK, begin_slot)
            self.recorder.load_state(self)
        end_slot = self._slots.get(id(end))
        if end_slot is None:
            if not np.array_equal(end, self.synapses.weights):
                self.recorder.load_state(self, end)
            end_slot = self._new_slot(end)
            self._event(S.MARK, end_slot)
        self._event(S.BLEND, begin_slot, end_slot, float(fraction))

    # -- slots ----------------------------------------------------------------------
    def _new_slot(self, array: np.ndarray) -> int:
        slot = self._next_slot
        self._next_slot += 1
        key = id(array)
        self._slots[key] = slot
        weakref.finalize(array, self._drop, key, slot)
        return slot

    def _drop(self, key: int, slot: int) -> None:
        """The array of `slot` died (maybe in another thread, by the cyclic GC): forget its
        id now (atomic), log the DROP from the recording thread (see TraceRecorder._event)."""
        if self._slots.get(key) == slot:
            del self._slots[key]
        self._snapshot_slots.discard(slot)
        self.recorder.drop_slot(self.index, slot)

    # -- to the writer --------------------------------------------------------------
    def flush_steps(self) -> None:
        """Hand the buffered rasters to the writer (a whole chunk, or the rest at a commit)."""
        n = self._n
        if n == 0:
            return
        writer, group = self.recorder.writer, self.spec.group
        if n == S.STEP_CHUNK:
            pre, post, tok = self._pre, self._post, self._tok
            self._new_buffers()
        else:
            pre, post, tok = self._pre[:n].copy(), self._post[:n].copy(), self._tok[:n].copy()
            self._n = 0
        writer.append(f"{group}/pre", pre)
        writer.append(f"{group}/post", post)
        writer.append(f"{group}/token", tok)
        if self._rows:
            writer.append(f"{group}/flush_rows", np.concatenate(self._rows))
            self._rows = []

    # -- the recorder's lifecycle (the same calls for every trace form) ---------------
    def attach(self) -> None:
        """Start observing the site."""
        self.synapses.observers.append(self)

    def detach(self) -> None:
        """Stop observing the site."""
        if self in self.synapses.observers:
            self.synapses.observers.remove(self)

    def restore_counts(self, counts: dict[str, int]) -> None:
        """Continue from a store's committed counts of this site."""
        self.steps, self.rows = int(counts["steps"]), int(counts["rows"])

    def commit_counts(self) -> dict[str, int]:
        """This site's counts for the next commit."""
        return {"steps": self.steps, "rows": self.rows}

    def matches_checkpoint(self, index: int) -> bool:
        """Whether the weights equal the store's checkpoint `index` (a continued session
        that goes on from where the last one ended)."""
        recorded = self.recorder.root[f"{self.spec.group}/checkpoint_weights"][index]
        return bool(np.array_equal(np.asarray(recorded), self.synapses.weights))

    def save_checkpoint(self) -> None:
        """Queue one checkpoint of the weights."""
        weights = self.synapses.weights
        self.recorder.writer.append(f"{self.spec.group}/checkpoint_weights", weights[None].copy())

    def save_state(self, *, initial: bool = False, weights: np.ndarray | None = None) -> None:
        """Queue one saved state: the weights (`weights` if given; initial: the initial
        weights), the rule's state arrays (zeroed if initial), and what closed-loop replay
        needs to start where a session started: the reward state and a readout's context
        signature. Other rules' state arrays of the store get fill rows."""
        rec, syn = self.recorder, self.synapses
        group, rule = self.spec.group, syn.rule.name
        if weights is None:
            weights = syn.initial if initial else syn.weights
        rec.writer.append(f"{group}/state_weights", weights[None].astype(np.float32))
        states = {
            f"rule_state/{rule}": syn.state_arrays(),
            "reward_state": self.adapter.rewards.state_arrays(),
        }
        context = getattr(self.adapter.layers[self.spec.site], "context", None)
        if context is not None and context.enabled:
            states["context"] = context.state_arrays()
        for sub, arrays in states.items():
            ensure_state_arrays(rec.root, self.spec, sub, arrays, rec.state_count)
            for key, value in arrays.items():
                value = np.asarray(value)
                row = np.zeros_like(value) if initial else value
                rec.writer.append(f"{group}/{sub}/{key}", row[None].copy())
        for other_rule, sub in rec.root[f"{group}/rule_state"].groups():
            if other_rule == rule:
                continue
            for _, array in sub.arrays():
                fill = np.full((1, *array.shape[1:]), array.fill_value, dtype=array.dtype)
                rec.writer.append(array.path, fill)
