"""What `plastic inspect` shows of a context memory's site: what it read and how its
tables grew, from the event log and its checkpoints (`memory_overview`); and, by an exact
open-loop replay, how it predicted what the user typed (`memory_reading`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from plastic.replay import schema as S
from plastic.replay.memory_state import distance, max_abs_diff, summary
from plastic.replay.reader import TraceReader
from plastic.replay.replay import OpenLoopReplay, ReplayOptions
from plastic.replay.sparkline import sparkline


def memory_overview(reader: TraceReader, spec: S.SiteSpec) -> dict[str, Any]:
    """Reads (learnt, reply, other), boundaries, credits and guard operations on the
    memory; its tables at the session start and at every checkpoint (detectors, synapses,
    mixer); the change of its mixer and synapses (`memory_state.distance`) from the first
    session's start to the last checkpoint; bytes on disk per token."""
    kinds = reader.read("events/kind")
    sites = reader.read("events/site")
    mine = sites == spec.index
    reads = mine & (kinds == S.MEMORY_READ)
    rows = reader.read("events/b")[reads]
    flags = reader.read("events/value")[reads].astype(np.int64)
    learn = (flags & S.READ_LEARN) != 0
    generating = (flags & S.READ_GENERATING) != 0
    count = {name: int((mine & (kinds == k)).sum()) for k, name in S.EVENT_NAMES.items()}
    checkpoints = reader.checkpoints()
    tables = [
        {"checkpoint": c.index, "turn": c.turn, **summary(reader.memory_checkpoint(spec, c.index))}
        for c in checkpoints
    ]
    session = reader.sessions[0] if reader.sessions else None
    start = None
    if session is not None:
        start = reader.state(spec, int(session["state"]), "detector_stdp")[1]
    change = None
    if start is not None and checkpoints:
        last = reader.memory_checkpoint(spec, checkpoints[-1].index)
        mixer = np.asarray(last["mixer"], np.float64) - np.asarray(start["mixer"], np.float64)
        change = {
            "detectors_created": int(last["sizes"][0]) - int(start["sizes"][0]),
            "synapses_created": int(last["sizes"][1]) - int(start["sizes"][1]),
            "mixer_change": float(np.linalg.norm(mixer)),
            "weight_change": distance(last, start)[0],
        }
    disk = {
        name: reader.nbytes_stored(f"{spec.group}/{name}")
        for name in ("read_logits", "read_id", "state_blob", "checkpoint_blob")
    }
    n = max(reader.n_tokens, 1)
    return {
        "kind": "memory",
        "bytes_learnt": int(rows[learn].sum()),
        "bytes_of_replies": int(rows[generating].sum()),
        "bytes_read_not_learnt": int(rows[~learn & ~generating].sum()),
        "boundaries": count["forget"],
        "credits": count["reward"],
        "undo_restores": count["restore"],
        "caps": count["cap"],  # cap checks (each logged, scaled or not)
        "drift_blends": count["blend"],
        "resets": count["reset"],
        "start": None if start is None else summary(start),
        "checkpoints": tables,
        "change": change,
        "disk_bytes": disk,
        "disk_bytes_per_token": sum(disk.values()) / n,
    }


def weight_change(after: Any, before: Any) -> float:
    """||change||_F of a memory's synapses (matched by detector and byte) and mixer."""
    return distance(after, before)[0]


def memory_reading(reader: TraceReader, spec: S.SiteSpec) -> dict[str, Any]:
    """Over the learnt bytes (user text), as the chat predicted them: per order, the
    fraction whose detector of that order had fired before (a hit); the gate g (mean, last,
    over time); bits/byte of the memory's prediction and of the backbone's alone. From an
    open-loop replay that feeds the recorded reads one token at a time (the same result as
    whole reads: `exact` says whether the end state equals the last checkpoint)."""
    replay = ReadingReplay(reader, spec)
    replay.run()
    checkpoints = reader.checkpoints()
    exact = None
    if checkpoints:
        recorded = reader.memory_checkpoint(spec, checkpoints[-1].index)
        exact = max_abs_diff(replay.synapses[spec.key].state_arrays(), recorded) == 0.0
    n = replay.learnt
    gates = np.asarray(replay.gates, np.float64)
    return {
        "orders": replay.orders,
        "learnt_bytes": n,
        "hit_rate": [h / n if n else None for h in replay.hits],
        "gate_mean": float(gates.mean()) if gates.size else None,
        "gate_last": float(gates[-1]) if gates.size else None,
        "gate_sparkline": sparkline(gates) if gates.size else "",
        "bits_per_byte": {
            "memory": replay.bits / n if n else None,
            "backbone": replay.backbone_bits / n if n else None,
        },
        "exact": exact,
    }


def _bits(row: np.ndarray, target: int) -> float:
    """-log2 softmax(row)[target]."""
    row = np.asarray(row, np.float64)
    top = row.max()
    return float((np.log(np.exp(row - top).sum()) + top - row[target]) / np.log(2.0))


class ReadingReplay(OpenLoopReplay):
    """An exact open-loop replay whose reads of one memory site go token by token, each
    learnt byte measured before it is read (see `memory_reading`)."""

    def __init__(self, reader: TraceReader, spec: S.SiteSpec) -> None:
        super().__init__(reader, ReplayOptions())
        self.spec = spec
        self.orders: list[int] = []
        self.hits: list[int] = []
        self.gates: list[float] = []
        self.learnt = 0
        self.bits = self.backbone_bits = 0.0
        self._rows: tuple[np.ndarray, np.ndarray] | None = None  # (memory, backbone) logits

    def _apply(self, kind, site, a, b, value, specs, rasters, slots, epoch) -> int:
        if kind != S.MEMORY_READ or site != self.spec.index:
            return super()._apply(kind, site, a, b, value, specs, rasters, slots, epoch)
        layer = self.synapses[self.spec.key].memory  # type: ignore[attr-defined]
        if not self.orders:
            self.orders = [int(k) for k in layer.params.orders]
            self.hits = [0] * len(self.orders)
        ids, logits = rasters[site].rows(a, b)
        flags = int(value)
        learn, generating = bool(flags & S.READ_LEARN), bool(flags & S.READ_GENERATING)
        for s in range(b):
            y = int(ids[s])
            if learn and y < 256 and layer.live.meta[1] == 1 and self._rows is not None:
                self._measure(layer, y)
            backbone = logits[s].copy()
            row = logits[s : s + 1]
            layer.read(0, ids[s : s + 1], row, True, learn, generating)
            self._rows = (row[0].copy(), backbone)
            if learn and y < 256:
                self.gates.append(layer.gate())
        return b

    def _measure(self, layer: Any, y: int) -> None:
        """Byte y arrives while the memory's prediction of it is pending: count it."""
        from plastic.kernels_numba.cpu_memory import EMPTY, detector_of

        tables = layer.tables
        for j, key in enumerate(layer.live.pending_keys):
            if key == EMPTY:
                break
            d = detector_of(tables, key, False)
            if d >= 0 and tables.det_trace[d] > 0:
                self.hits[j] += 1
        memory, backbone = self._rows  # type: ignore[misc]
        self.learnt += 1
        self.bits += _bits(memory, y)
        self.backbone_bits += _bits(backbone, y)
