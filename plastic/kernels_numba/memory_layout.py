"""The array records the context-memory kernels read and update in place.

`MemoryTables` is learnt state (saved with an adapter, snapshotted per turn);
`MemoryReading` belongs to the text being read (like the backbone's recurrent state: the
conversation has one, a scored text its own); `MemoryParams` is immutable.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from plastic.kernels_numba.memory_math import N_BYTES

GROWTH = 2  # capacities double when a chunk could overflow them


class MemoryParams(NamedTuple):
    """The memory's constants, unpacked once at kernel entry."""

    orders: np.ndarray  # int64 [K], ascending context lengths (bytes)
    prior: float  # Witten-Bell escape weight of a detector's fan-out
    decay: float  # activity-trace decay per firing (metaplasticity)
    mixer_rate: float  # delta-rule learning rate of the mixer
    confidence_buckets: int  # mixer weight sets per longest order
    gate_tau: float  # bytes the gate's running advantage averages over
    gate_scale: float  # bits of advantage that open the gate by e (logistic)
    gate_clip: float  # the running advantage stays within +-this (bits)


class MemoryTables(NamedTuple):
    """Detectors (hash table + per-detector arrays), their synapse pool, the mixer."""

    table_keys: np.ndarray  # uint64 [C], 0 = empty slot (open addressing, linear probing)
    table_ids: np.ndarray  # int32 [C], detector id of the slot
    det_key: np.ndarray  # uint64 [D]
    det_trace: np.ndarray  # float32 [D], metaplastic activity trace n
    det_head: np.ndarray  # int32 [D], first synapse of the detector (-1: none)
    det_fanout: np.ndarray  # int32 [D], synapses grown u
    syn_post: np.ndarray  # uint8 [P], the byte neuron a synapse reaches
    syn_weight: np.ndarray  # float32 [P]
    syn_next: np.ndarray  # int32 [P], next synapse of the same detector (-1: end)
    sizes: np.ndarray  # int64 [2]: detectors, synapses in use
    mixer: np.ndarray  # float64 [sets, K + 1], weights of log p_backbone, log p_1..K


class MemoryReading(NamedTuple):
    """The text being read: delay line of recent bytes, the pending prediction, the gate."""

    history: np.ndarray  # uint8 [max order], history[0] the latest byte
    meta: np.ndarray  # int64 [3]: bytes in history, prediction pending (0/1), its mixer set
    pending_keys: np.ndarray  # uint64 [K], detector keys of the pending prediction (0: none)
    pending_logs: np.ndarray  # float64 [K + 1, 256], the mixer's inputs (log probabilities)
    pending_expect: np.ndarray  # float64 [K + 1], their expectations under the mixture
    pending_mix: np.ndarray  # float64 [256], the mixture q
    pending_backbone: np.ndarray  # float64 [256], the backbone's p over bytes
    gate: np.ndarray  # float64 [1], running advantage of the memory on this text (bits)


def mixer_sets(params: MemoryParams) -> int:
    """Weight sets of the mixer: (longest order present + 1) x confidence buckets."""
    return (len(params.orders) + 1) * params.confidence_buckets


def new_tables(
    params: MemoryParams, detectors: int, synapses: int, mixer: np.ndarray
) -> MemoryTables:
    """Empty tables with room for `detectors` and `synapses`, and the mixer's initial
    weights `mixer` [mixer_sets(params), K + 1] (see `plastic.rules.delta_mixer`)."""
    k = len(params.orders)
    if mixer.shape != (mixer_sets(params), k + 1):
        raise ValueError(
            f"mixer weights of shape {mixer.shape}, the memory needs {(mixer_sets(params), k + 1)}"
        )
    capacity = _table_capacity(detectors)
    return MemoryTables(
        np.zeros(capacity, np.uint64),
        np.zeros(capacity, np.int32),
        np.zeros(detectors, np.uint64),
        np.zeros(detectors, np.float32),
        np.full(detectors, -1, np.int32),
        np.zeros(detectors, np.int32),
        np.zeros(synapses, np.uint8),
        np.zeros(synapses, np.float32),
        np.full(synapses, -1, np.int32),
        np.zeros(2, np.int64),
        np.array(mixer, np.float64),
    )


def new_reading(params: MemoryParams) -> MemoryReading:
    """A reading at the start of a text (no history, nothing pending, gate at 0 bits)."""
    k = len(params.orders)
    return MemoryReading(
        np.zeros(int(params.orders[-1]), np.uint8),
        np.zeros(3, np.int64),
        np.zeros(k, np.uint64),
        np.zeros((k + 1, N_BYTES), np.float64),
        np.zeros(k + 1, np.float64),
        np.zeros(N_BYTES, np.float64),
        np.zeros(N_BYTES, np.float64),
        np.zeros(1, np.float64),
    )


def _table_capacity(detectors: int) -> int:
    """A power of two at least twice `detectors` (load factor <= 1/2)."""
    return 1 << max(int(2 * max(detectors, 8) - 1).bit_length(), 4)


def grown(tables: MemoryTables, detectors: int, synapses: int) -> MemoryTables:
    """Tables with room for at least `detectors` and `synapses` (same content)."""
    n_det, n_syn = int(tables.sizes[0]), int(tables.sizes[1])
    d_cap, s_cap = len(tables.det_key), len(tables.syn_post)
    if detectors <= d_cap and synapses <= s_cap:
        return tables
    new_d = max(d_cap, 1)
    while new_d < detectors:
        new_d *= GROWTH
    new_s = max(s_cap, 1)
    while new_s < synapses:
        new_s *= GROWTH

    def extend(array: np.ndarray, size: int, used: int, fill: int | float) -> np.ndarray:
        out = np.full(size, fill, array.dtype)
        out[:used] = array[:used]
        return out

    det_key = extend(tables.det_key, new_d, n_det, 0)
    keys, ids = rebuild_table(det_key, n_det, _table_capacity(new_d))
    return MemoryTables(
        keys,
        ids,
        det_key,
        extend(tables.det_trace, new_d, n_det, 0.0),
        extend(tables.det_head, new_d, n_det, -1),
        extend(tables.det_fanout, new_d, n_det, 0),
        extend(tables.syn_post, new_s, n_syn, 0),
        extend(tables.syn_weight, new_s, n_syn, 0.0),
        extend(tables.syn_next, new_s, n_syn, -1),
        tables.sizes,
        tables.mixer,
    )


def rebuild_table(det_key: np.ndarray, n_det: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """The hash table of the first `n_det` detector keys, in a table of `capacity` slots."""
    from plastic.kernels_numba.cpu_memory import fill_table

    keys = np.zeros(capacity, np.uint64)
    ids = np.zeros(capacity, np.int32)
    fill_table(keys, ids, det_key, n_det)
    return keys, ids
