"""A context memory's state in a trace: one safetensors blob per saved state or checkpoint,
and how two such states compare.

The memory's state (`MemorySynapses.state_arrays`: detector and synapse tables, the mixer,
the reply's eligibility) grows as it reads, so it is not a fixed-shape row: each saved
state (session start, a LOAD) and each checkpoint is one safetensors blob (no pickle)
appended to the site's flat `state_blob` / `checkpoint_blob` byte array, with its end
offset in `state_end` / `checkpoint_end`. The adapter's reward-source states travel in the
same blob under `reward_state.`.

Two states are compared as the memory's synapses are: synapse weights matched by
(detector key, byte neuron), whatever order the pools hold them in, and the mixer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from plastic.errors import TraceError

if TYPE_CHECKING:
    from plastic.replay.reader import TraceReader
    from plastic.replay.schema import SiteSpec

REWARD_PREFIX = "reward_state."
# arrays that must be equal for two states to be the same tables (else the difference is inf)
STRUCTURE = ("sizes", "det_key", "det_head", "det_fanout", "syn_post", "syn_next")


def encode_state(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The arrays as one safetensors blob (uint8)."""
    from safetensors.numpy import save

    data = save({key: np.ascontiguousarray(value) for key, value in arrays.items()})
    return np.frombuffer(data, np.uint8)


def decode_state(blob: np.ndarray, where: str) -> dict[str, np.ndarray]:
    """The arrays of one blob; TraceError naming `where` if it does not decode."""
    from safetensors.numpy import load

    try:
        return dict(load(blob.tobytes()))
    except Exception as exc:  # safetensors raises its own error types
        raise TraceError(f"{where}: a saved memory state does not decode ({exc})") from None


def read_record(reader: TraceReader, spec: SiteSpec, which: str, index: int) -> dict:
    """Blob `index` of a memory site's `which` ("state" or "checkpoint") records."""
    ends = reader.read(f"{spec.group}/{which}_end")
    if not 0 <= index < len(ends):
        raise TraceError(f"{reader.path}: no committed memory {which} {index} for {spec.key}")
    start = int(ends[index - 1]) if index > 0 else 0
    stop = int(ends[index])
    blob = reader.read(f"{spec.group}/{which}_blob", start, stop)
    if blob.shape[0] != stop - start:
        raise TraceError(f"{reader.path}: memory {which} {index} of {spec.key} is truncated")
    return decode_state(blob, f"{reader.path} {spec.key} {which} {index}")


def split_record(record: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """(the memory's state arrays, the adapter's reward-source states) of a record."""
    memory = {k: v for k, v in record.items() if not k.startswith(REWARD_PREFIX)}
    rewards = {k[len(REWARD_PREFIX) :]: v for k, v in record.items() if k.startswith(REWARD_PREFIX)}
    return memory, rewards


def weights_vector(state: Mapping[str, np.ndarray]) -> np.ndarray:
    """[synapse weights in pool order, mixer weights] (as `MemorySynapses.weights`)."""
    return np.concatenate(
        [np.asarray(state["syn_weight"], np.float64), np.asarray(state["mixer"]).ravel()]
    )


def max_abs_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """Largest |a - b| over synapse weights, activity traces and the mixer when both hold
    the same tables (detectors, synapses and links, eligibility); inf when they do not."""
    for key in set(a) | set(b):
        structural = key in STRUCTURE or key.startswith("eligibility.")
        if structural and (key not in a or key not in b or not np.array_equal(a[key], b[key])):
            return float("inf")
    worst = 0.0
    for key in ("syn_weight", "det_trace", "mixer"):
        x, y = np.asarray(a[key], np.float64), np.asarray(b[key], np.float64)
        if x.shape != y.shape:
            return float("inf")
        if x.size:
            worst = max(worst, float(np.abs(x - y).max()))
    return worst


def synapse_weights(state: Mapping[str, np.ndarray]) -> dict[tuple[int, int], float]:
    """(detector key, byte) -> weight of every synapse (following each detector's list)."""
    det_key = np.asarray(state["det_key"])
    head = np.asarray(state["det_head"])
    post = np.asarray(state["syn_post"])
    nxt = np.asarray(state["syn_next"])
    weight = np.asarray(state["syn_weight"])
    owner = np.full(len(post), -1, np.int64)
    frontier = np.flatnonzero(head >= 0)
    cursor = head[frontier].astype(np.int64)
    while cursor.size:  # one step along every detector's list at once
        owner[cursor] = frontier
        more = nxt[cursor] >= 0
        frontier, cursor = frontier[more], nxt[cursor[more]].astype(np.int64)
    used = np.flatnonzero(owner >= 0)
    keys = det_key[owner[used]].tolist()
    pairs = zip(keys, post[used].tolist(), strict=True)
    return dict(zip(pairs, weight[used].tolist(), strict=True))


def distance(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """(Frobenius, max abs) distance of two states: synapses matched by (detector key,
    byte), a synapse one lacks counting as 0, plus the mixers (when of the same shape)."""
    wa, wb = synapse_weights(a), synapse_weights(b)
    diffs = [wa.get(k, 0.0) - wb.get(k, 0.0) for k in set(wa) | set(wb)]
    ma, mb = np.asarray(a["mixer"], np.float64), np.asarray(b["mixer"], np.float64)
    if ma.shape == mb.shape:
        diffs.extend((ma - mb).ravel().tolist())
    if not diffs:
        return 0.0, 0.0
    values = np.abs(np.asarray(diffs, np.float64))
    return float(np.sqrt(np.dot(values, values))), float(values.max())


def summary(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Sizes and norms of one state, for `plastic inspect`."""
    sizes = np.asarray(state["sizes"]).reshape(-1)
    weights = np.asarray(state["syn_weight"], np.float64)
    return {
        "detectors": int(sizes[0]),
        "synapses": int(sizes[1]),
        "synapse_weight_sum": float(weights.sum()),
        "mixer_norm": float(np.linalg.norm(np.asarray(state["mixer"], np.float64))),
        "reply_bytes": int(np.asarray(state.get("eligibility.reply", np.zeros(0))).size),
    }
