"""What `plastic inspect` shows of a context memory's site: what it read and how its
tables grew, from the event log and its checkpoints (no replay needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from plastic.replay import schema as S
from plastic.replay.memory_state import distance, summary
from plastic.replay.reader import TraceReader


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
        "caps": count["cap"],
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
