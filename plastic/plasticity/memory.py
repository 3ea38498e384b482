"""The context memory: delay-line detectors, plastic synapses onto byte neurons, a plastic mixer.

An adapter kind ("memory", the chat's default) at the readout. It reads the token stream,
not a site's spikes, and rewrites the backbone's prediction:

- **Detectors** (`plastic.rules.detector_stdp`): for each context length k in `orders`
  (1-6, 8, 12, 16 bytes by default) a conjunction neuron fed by delay lines fires when its
  sequence of the last k bytes arrives. Detectors are hashed into a table that grows as
  text is read; per byte only K of them fire (one per order), so the cost per byte does not
  depend on how many exist. A detector's synapses onto the 256 byte neurons learn by
  soft-bounded STDP at a metaplastic rate; their weights estimate P(next byte | detector).
- **Chain** (Witten & Bell 1991 escapes): from the backbone's prediction p_0, each detector
  present (shortest first) refines p_k = e p_(k-1) + (1 - e) w_k, with e = u prior /
  (n + u prior) its escape (u synapses grown, n its activity trace): a detector speaks
  with the confidence its own history earned.
- **Mixer** (`plastic.rules.delta_mixer`): log p_0..p_K mixed geometrically by mixing
  synapses, one weight set per (longest detector present, its confidence), learnt by the
  delta rule whose third factor is the arriving byte's teaching signal.
- **Gate**: g = sigmoid(A / gate_scale) mixes the memory's prediction q with the
  backbone's, p = (1 - g) p_0 + g q, where A is the running advantage (bits) of q over p_0
  on the text being read over the last ~gate_tau bytes, kept within +-gate_clip. A
  belongs to the text (like the backbone's recurrent state): each new text starts closed
  (A = -gate_clip), so the memory earns its say on every text. Where it knows the text,
  its advantage is bits per byte and the gate opens within a few bytes; where it does not
  help, it stays quiet (what `plastic bench adapt` measures as forgetting, and the chat's
  control sentences).

Learning happens on observed text only (the user's turns, a stream); the model's replies
are kept as the eligibility that `/good` and `/bad` credit. The fused kernel
`plastic.kernels_numba.cpu_memory.read_chunk` does all of it for a chunk in one call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from plastic.errors import ConfigError, RuleError
from plastic.kernels_numba.memory_layout import (
    GROWTH,
    MemoryParams,
    MemoryReading,
    MemoryTables,
    grown,
    mixer_sets,
    new_reading,
    new_tables,
    rebuild_table,
)
from plastic.models.sites import SiteInfo
from plastic.plasticity.config import AdapterConfig
from plastic.plasticity.kinds import KindSpec, settings_from_dict
from plastic.plasticity.synapses import SynapseSnapshot
from plastic.rules import delta_mixer, detector_stdp

# Table arrays saved with an adapter and kept in snapshots (the used part of each).
DETECTOR_ARRAYS = ("det_key", "det_trace", "det_head", "det_fanout")
SYNAPSE_ARRAYS = ("syn_post", "syn_weight", "syn_next")
BACKBONE_TABLE_KEY = "memory.backbone_table"  # this kind's entry in a BitsRequest's cache


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """The memory kind's own settings (`AdapterConfig.kind_params`); chosen on held-out
    text (docs/log/2026-12-06-memory.md)."""

    orders: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 12, 16)
    confidence_buckets: int = 4
    mixer_rate: float = 0.001
    init_top: float = 0.8
    gate_tau: float = 50.0
    gate_scale: float = 0.05
    gate_clip: float = 0.2
    initial_detectors: int = 4096
    initial_synapses: int = 8192
    max_state_mb: float = 2048.0  # the tables stop growing here; what exists keeps learning

    def __post_init__(self) -> None:
        orders = self.orders
        if isinstance(orders, list):
            object.__setattr__(self, "orders", tuple(orders))
            orders = self.orders
        if (
            not isinstance(orders, tuple)
            or not orders
            or not all(isinstance(k, int) and not isinstance(k, bool) for k in orders)
            or list(orders) != sorted(set(orders))
            or orders[0] < 1
            or orders[-1] > 64
        ):
            raise ConfigError(
                f"orders must be ascending distinct integers in [1, 64], got {orders!r}"
            )
        _require_int("confidence_buckets", self.confidence_buckets, 1, 64)
        _require_int("initial_detectors", self.initial_detectors, 16, 1 << 30)
        _require_int("initial_synapses", self.initial_synapses, 16, 1 << 30)
        delta_mixer.Params(rate=float(self.mixer_rate), init_top=float(self.init_top))
        for name in ("gate_tau",):
            value = getattr(self, name)
            if not (_number(value) and value >= 1):
                raise ConfigError(f"{name} must be >= 1 byte, got {value!r}")
        if not (_number(self.max_state_mb) and self.max_state_mb >= 1):
            raise ConfigError(f"max_state_mb must be >= 1 MB, got {self.max_state_mb!r}")
        for name in ("gate_scale", "gate_clip"):
            value = getattr(self, name)
            if not (_number(value) and value > 0):
                raise ConfigError(f"{name} must be > 0 bits, got {value!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryConfig:
        return settings_from_dict(cls, data, "memory")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["orders"] = list(self.orders)
        return data


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require_int(name: str, value: Any, low: int, high: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


class MemorySynapses:
    """The memory's plastic state behind the interface the engine guards (snapshot, restore,
    change norm, cap, blend, save): detector synapses and mixing synapses.

    `weights` is the vector [synapse weights in pool order, mixer weights]: what the turn
    cap, the drift guard's back-off and `/stats` see. The cap bounds the mixer (its weights
    act on every byte); detector synapses act only in their own contexts and are watched by
    the drift guard's probe.
    """

    def __init__(self, memory: MemoryLayer) -> None:
        self.memory = memory
        self.params = memory.rule_params
        self.uses_reward = detector_stdp.uses_reward
        self.tables = memory.fresh_tables()
        self.eligibility = memory.fresh_eligibility()
        # recorders (`plastic.plasticity.observers.SynapseObserver`): every operation that
        # changes the tables is reported with its arguments, as PlasticSynapses does
        self.observers: list[Any] = []

    # -- the weights as the engine sees them ----------------------------------------------
    w_min, w_max = 0.0, 1.0  # synapse bounds (soft: the rule never leaves them); mixer unbounded

    @property
    def initial(self) -> np.ndarray:
        """The weights of a fresh memory: no synapses, the mixer's initial trust."""
        return self.memory.fresh_tables().mixer.ravel().copy()

    @property
    def bounded_weights(self) -> np.ndarray:
        """The detectors' synapse weights (in [0, 1]; the mixer's are unbounded)."""
        return self.tables.syn_weight[: int(self.tables.sizes[1])]

    @property
    def weights(self) -> np.ndarray:
        n_syn = int(self.tables.sizes[1])
        return np.concatenate(
            [self.tables.syn_weight[:n_syn].astype(np.float64), self.tables.mixer.ravel()]
        )

    def sync(self) -> None:
        """Nothing is deferred."""

    def _split(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mixer_size = self.tables.mixer.size
        return vector[: len(vector) - mixer_size], vector[len(vector) - mixer_size :]

    def _aligned_change(self, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(synapse change, mixer change) against `reference`; synapses grown since count
        from 0."""
        ref_syn, ref_mix = self._split(reference)
        n_syn = int(self.tables.sizes[1])
        if len(ref_syn) > n_syn:
            raise ConfigError("the memory has fewer synapses than the reference it is compared to")
        change = self.tables.syn_weight[:n_syn].astype(np.float64)
        change[: len(ref_syn)] -= ref_syn
        return change, self.tables.mixer.ravel() - ref_mix

    def change_norm(self, reference: np.ndarray) -> float:
        syn, mix = self._aligned_change(reference)
        return float(math.sqrt(float(np.dot(syn, syn)) + float(np.dot(mix, mix))))

    def cap_change(self, reference: np.ndarray, max_norm: float) -> float | None:
        """Scale the mixer's change back so that its norm is <= max_norm; returns the norm
        before capping when it had to (None otherwise)."""
        _, ref_mix = self._split(reference)
        mixer = self.tables.mixer
        change = mixer.ravel() - ref_mix
        norm = float(np.linalg.norm(change))
        capped = norm > max_norm
        if capped:
            mixer[...] = (ref_mix + change * (max_norm / norm)).reshape(mixer.shape)
        for observer in self.observers:
            observer.on_cap(reference, max_norm)
        return norm if capped else None

    def blend(self, begin: np.ndarray, end: np.ndarray, fraction: float) -> None:
        """weights = begin + (end - begin) * fraction (the drift guard's back-off)."""
        for observer in self.observers:
            observer.on_blend(begin, end, fraction)
        begin_syn, begin_mix = self._split(begin)
        end_syn, end_mix = self._split(end)
        n_end = len(end_syn)
        start = np.zeros(n_end, np.float64)
        start[: len(begin_syn)] = begin_syn
        self.tables.syn_weight[:n_end] = (start + (end_syn - start) * fraction).astype(np.float32)
        self.tables.mixer[...] = (begin_mix + (end_mix - begin_mix) * fraction).reshape(
            self.tables.mixer.shape
        )

    # -- snapshots, reset, saving ------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every learnt array (the used part), the eligibility included."""
        t = self.tables
        n_det, n_syn = int(t.sizes[0]), int(t.sizes[1])
        out = {name: getattr(t, name)[:n_det].copy() for name in DETECTOR_ARRAYS}
        out.update({name: getattr(t, name)[:n_syn].copy() for name in SYNAPSE_ARRAYS})
        out["sizes"] = t.sizes.copy()
        out["mixer"] = t.mixer.copy()
        for key, value in detector_stdp.state_to_dict(self.eligibility).items():
            out[f"eligibility.{key}"] = value
        return out

    def snapshot(self) -> SynapseSnapshot:
        snap = SynapseSnapshot(self.weights, self.state_arrays())
        for observer in self.observers:
            observer.on_snapshot(snap)
        return snap

    def restore(self, snap: SynapseSnapshot) -> None:
        self._set_state(None, snap.rule_state)
        for observer in self.observers:
            observer.on_restore(snap)

    def reset(self) -> None:
        self.tables = self.memory.fresh_tables()
        self.eligibility = self.memory.fresh_eligibility()
        for observer in self.observers:
            observer.on_reset()

    def expected_weights_shape(self, rule_state: Mapping[str, np.ndarray]) -> tuple[int, ...]:
        """The shape of the saved `weights` vector that goes with `rule_state`."""
        sizes = np.asarray(rule_state.get("sizes", np.zeros(2)))
        n_syn = int(sizes.reshape(-1)[1]) if sizes.size == 2 else -1
        return (n_syn + self.tables.mixer.size,)

    def load(self, weights: np.ndarray | None, rule_state: Mapping[str, Any]) -> None:
        """Tables from saved arrays (checked: sizes, dtypes, links, bounds), exactly."""
        self._set_state(weights, rule_state)
        for observer in self.observers:
            observer.on_load()

    def _set_state(self, weights: np.ndarray | None, rule_state: Mapping[str, Any]) -> None:
        self.tables = checked_tables(self.memory, rule_state)
        if weights is not None:
            syn, mix = self._split(np.asarray(weights, np.float64))
            if not (
                np.array_equal(syn.astype(np.float32), self.tables.syn_weight[: len(syn)])
                and np.array_equal(mix, self.tables.mixer.ravel())
            ):
                raise RuleError("the saved weights disagree with the saved synapses")
        elig = {
            key[len("eligibility.") :]: value
            for key, value in rule_state.items()
            if key.startswith("eligibility.")
        }
        self.eligibility = (
            detector_stdp.state_from_dict(elig) if elig else self.memory.fresh_eligibility()
        )

    def reward(self, value: float) -> None:
        """Credit the last reply (see detector_stdp.apply_reward)."""
        reply = self.eligibility.reply
        if reply.size:
            self._credit(value, reply)
        for observer in self.observers:
            observer.on_reward(value)

    def _credit(self, value: float, reply: np.ndarray) -> None:
        if not self.memory.full:  # room for every byte's detectors and synapses
            k = len(self.memory.settings.orders)
            self.tables = grown(
                self.tables,
                int(self.tables.sizes[0]) + k * reply.size,
                int(self.tables.sizes[1]) + k * reply.size,
            )
        self.tables, self.eligibility = detector_stdp.apply_reward(
            value, self.tables, self.eligibility, self.params
        )

    # -- figures -------------------------------------------------------------------------
    def eligibility_norm(self) -> float | None:
        return float(self.eligibility.reply.size)

    def rule_baseline(self) -> float | None:
        return None

    def nbytes(self) -> int:
        """Bytes of memory the tables hold (allocated capacity, not only the used part)."""
        return int(sum(a.nbytes for a in self.tables))


def backbone_table(
    logits: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frozen rows' byte distributions, their logs and target scales, computed once for
    a text the drift guard scores every turn (`cpu_memory.backbone_table`; 4 kB a row)."""
    from plastic.kernels_numba.cpu_memory import backbone_table as fill

    n = logits.shape[0]
    pbs, logs0 = np.empty((n, 256), np.float64), np.empty((n, 256), np.float64)
    scale = np.empty(n, np.float64)
    fill(logits, np.asarray(targets, np.int64), pbs, logs0, scale)
    return pbs, logs0, scale


def checked_tables(memory: MemoryLayer, state: Mapping[str, Any]) -> MemoryTables:
    """MemoryTables rebuilt from saved arrays, or RuleError saying what is wrong."""
    try:
        sizes = np.asarray(state["sizes"])
        if sizes.shape != (2,) or sizes.dtype != np.int64:
            raise RuleError(f"sizes has shape {sizes.shape} ({sizes.dtype}), needs (2,) int64")
        n_det, n_syn = int(sizes[0]), int(sizes[1])
        if n_det < 0 or n_syn < 0:
            raise RuleError("negative sizes")
        arrays = {name: np.asarray(state[name]) for name in (*DETECTOR_ARRAYS, *SYNAPSE_ARRAYS)}
        mixer = np.asarray(state["mixer"])
    except KeyError as exc:
        raise RuleError(f"missing memory array {exc}") from None
    template = memory.fresh_tables()
    for name, value in arrays.items():
        want = n_det if name in DETECTOR_ARRAYS else n_syn
        dtype = getattr(template, name).dtype
        if value.shape != (want,) or value.dtype != dtype:
            raise RuleError(
                f"{name} has shape {value.shape} ({value.dtype}), needs ({want},) {dtype}"
            )
    if mixer.shape != template.mixer.shape or mixer.dtype != np.float64:
        raise RuleError(f"mixer has shape {mixer.shape}, this memory needs {template.mixer.shape}")
    weights = arrays["syn_weight"]
    finite = [weights, arrays["det_trace"], mixer]
    if not all(np.all(np.isfinite(a)) for a in finite):
        raise RuleError("NaN or infinite values in the memory's state")
    if np.any((weights < 0) | (weights > 1)):
        raise RuleError("synapse weights outside [0, 1]")
    if np.any(arrays["det_trace"] < 0):
        raise RuleError("negative activity traces")
    for links, count in ((arrays["det_head"], n_syn), (arrays["syn_next"], n_syn)):
        if np.any((links < -1) | (links >= count)):
            raise RuleError("synapse links point outside the pool")
    if np.any(arrays["det_key"] == 0) or len(np.unique(arrays["det_key"])) != n_det:
        raise RuleError("detector keys are empty or repeated")
    tables = grown(template, max(n_det, 16), max(n_syn, 16))
    for name, value in arrays.items():
        getattr(tables, name)[: len(value)] = value
    keys, ids = rebuild_table(tables.det_key, n_det, len(tables.table_keys))
    tables.table_keys[...] = keys
    tables.table_ids[...] = ids
    tables.sizes[...] = sizes
    tables.mixer[...] = mixer
    return tables


def check_memory_config(config: AdapterConfig) -> None:
    """The memory learns with detector_stdp from the text itself (and /good, /bad)."""
    if config.rule != "detector_stdp":
        raise ConfigError("the memory kind learns with rule detector_stdp (and only it does)")
    if config.backend == "cuda":
        raise ConfigError("the memory kind runs on the CPU kernels only (no cuda backend yet)")
    if not set(config.reward) <= {"feedback"}:
        raise ConfigError(
            "the memory learns from the text itself; its only reward source is feedback"
        )


class MemoryLayer:
    """A context memory attached at one site (the readout); see the module docstring."""

    kind = "memory"  # what traces record about the site

    reads_chunks = True  # PlasticModel hands it whole chunks (one compiled call)
    feeds_backbone = False  # only rewrites the logits: a cached backbone pass replays it
    learns_while_generating = False  # the reply is only kept as eligibility for /good, /bad
    trace_form = "reads"  # recorded as its reads and state blobs

    def __init__(self, site: SiteInfo, vocab_size: int, config: AdapterConfig) -> None:
        if vocab_size < 256:
            raise ConfigError(f"the memory predicts bytes: vocabulary {vocab_size} < 256")
        self.site = site
        self.settings: MemoryConfig = config.settings
        try:
            self.rule_params = detector_stdp.params_from_dict(config.effective_rule_params())
        except RuleError as exc:
            raise ConfigError(str(exc)) from None
        s = self.settings
        self.params = MemoryParams(
            np.asarray(s.orders, np.int64),
            float(self.rule_params.prior),
            float(self.rule_params.decay),
            float(s.mixer_rate),
            int(s.confidence_buckets),
            float(s.gate_tau),
            float(s.gate_scale),
            float(s.gate_clip),
        )
        self.synapses = MemorySynapses(self)
        self.live = self.new_reading()
        self.scored: dict[int, MemoryReading] = {}
        # the mixer's teaching byte per learnt token, from the tokens (None: the tokens
        # themselves; `plastic bench adapt`'s sham shuffles them)
        self.teacher: Callable[[np.ndarray], np.ndarray] | None = None
        # recorders of the live reads (`on_read(tokens, logits, learn, generating)` before
        # a read rewrites the logits, `on_forget()`): with the synapses' observers, all
        # that the memory's learning depends on (plastic.replay.memory_tap)
        self.observers: list[Any] = []

    # -- construction ------------------------------------------------------------------------
    def fresh_tables(self) -> MemoryTables:
        s = self.settings
        mixer = delta_mixer.initial_weights(
            mixer_sets(self.params),
            len(s.orders) + 1,
            delta_mixer.Params(rate=float(s.mixer_rate), init_top=float(s.init_top)),
        )
        return new_tables(self.params, s.initial_detectors, s.initial_synapses, mixer)

    def fresh_eligibility(self) -> detector_stdp.Eligibility:
        state = detector_stdp.init_state(int(self.params.orders[-1]), 256, self.rule_params)
        return state._replace(orders=self.params.orders.copy())

    def new_reading(self) -> MemoryReading:
        """A reading at the start of a text (the gate closed: see the module docstring)."""
        reading = new_reading(self.params)
        self.restart(reading)
        return reading

    def restart(self, reading: MemoryReading) -> None:
        reading.history[:] = 0
        reading.meta[:] = 0
        reading.gate[0] = -self.params.gate_clip

    @property
    def tables(self) -> MemoryTables:
        return self.synapses.tables

    @property
    def weights(self) -> np.ndarray:
        return self.synapses.weights

    # -- reading -----------------------------------------------------------------------------
    def record(self, spikes: np.ndarray) -> None:
        """The memory reads tokens, not the site's spikes."""

    def release(self) -> None:
        """Nothing is held between forward passes."""

    def read(
        self,
        b: int,
        ids: Sequence[int],
        logits: np.ndarray,
        live: bool,
        learn: bool,
        generating: bool = False,
    ) -> None:
        """Read the tokens `ids` of batch row b, rewriting their logits rows [S, V] in place.

        `live`: the conversation (its reading carries on; otherwise the scored text's own
        reading, restarted at <bos>); `learn`: observed text that is learnt from;
        `generating`: the model's own tokens, kept as the eligibility of /good and /bad.
        """
        from plastic.kernels_numba.cpu_memory import read_chunk

        tokens = np.asarray(ids, np.int64)
        if live:
            for observer in self.observers:
                observer.on_read(tokens, logits, learn, generating)
            reading = self.live
            if generating:
                self._keep_reply(tokens)
            elif learn:
                self._drop_reply()
        else:
            reading = self.scored.get(b)
            if reading is None or (len(tokens) and tokens[0] == 256):
                reading = self.scored[b] = self.new_reading()
        if len(tokens) and tokens[0] == 256:
            self.restart(reading)
        targets = tokens
        if learn and self.teacher is not None:
            targets = np.asarray(self.teacher(tokens), np.int64)
        start = 0
        while start < len(tokens):
            done = read_chunk(
                self.tables,
                reading,
                self.params,
                tokens[start:],
                targets[start:],
                logits[start:],
                learn,
                not self.full,
            )
            start += done
            if start < len(tokens):  # room for the rest of the chunk, then go on
                self._grow(len(tokens) - start)

    @property
    def full(self) -> bool:
        """Whether the tables have reached `max_state_mb` (they no longer grow)."""
        return self.synapses.nbytes() >= self.settings.max_state_mb * 1e6 / GROWTH

    def _grow(self, rest: int) -> None:
        """Double the tables (room for `rest` more tokens); only called while not `full`."""
        k = len(self.settings.orders)
        tables = self.tables
        self.synapses.tables = grown(
            tables, 2 * int(tables.sizes[0]) + k * rest, 2 * int(tables.sizes[1]) + k * rest
        )

    def score_rows(
        self, logits: np.ndarray, tokens: np.ndarray, counts: Any, bits: Any = None
    ) -> None:
        """Read a whole text that is only scored (nothing learns, the conversation is
        untouched) in one kernel call: its rows of `logits` [N, V] are rewritten in place,
        or, given `bits` (a `BitsRequest`), left alone and `bits.out` gets each position's
        bits of its target. `counts` (site spike counts) is not needed by the memory."""
        from plastic.kernels_numba.cpu_memory import read_chunk, score_chunk

        ids = np.asarray(tokens, np.int64)
        reading = self.new_reading()
        if bits is not None:
            table = bits.cache.get(BACKBONE_TABLE_KEY)
            if table is None:
                table = bits.cache[BACKBONE_TABLE_KEY] = backbone_table(logits, bits.targets)
            score_chunk(self.tables, reading, self.params, ids, *table, bits.targets, bits.out)
            return
        done = read_chunk(self.tables, reading, self.params, ids, ids, logits, False, False)
        assert done == len(ids)  # reading without learning never grows the tables

    def _keep_reply(self, tokens: np.ndarray) -> None:
        elig = self.synapses.eligibility
        reply = tokens[tokens < 256].astype(np.uint8)
        if elig.reply.size == 0:
            known = int(self.live.meta[0])
            elig = elig._replace(context=self.live.history.copy(), known=known)
        self.synapses.eligibility = elig._replace(reply=np.concatenate([elig.reply, reply]))

    def _drop_reply(self) -> None:
        elig = self.synapses.eligibility
        if elig.reply.size:
            self.synapses.eligibility = elig._replace(reply=np.zeros(0, np.uint8))

    # -- the layer interface the model and engine call ------------------------------------
    def learn_transition(self, token: int) -> None:
        """Learning happens inside `read` (one compiled call per chunk)."""

    def reward(self, value: float) -> None:
        self.synapses.reward(value)

    def forget_context(self) -> None:
        """A stream boundary: nothing pairs across it, the delay line is empty."""
        self.restart(self.live)
        self.scored.clear()
        for observer in self.observers:
            observer.on_forget()

    def reset(self) -> None:
        """Empty tables, the mixer's initial trust, no eligibility."""
        self.synapses.reset()

    def extra_state(self) -> dict[str, np.ndarray]:
        """Everything learnt is in the synapses' state."""
        return {}

    def load_extra_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Nothing to restore beside the synapses."""

    def gate(self) -> float:
        """The conversation's gate g in [0, 1] now."""
        return 1.0 / (1.0 + math.exp(-float(self.live.gate[0]) / self.params.gate_scale))

    def rates(self) -> dict[str, float]:
        t = self.tables
        return {
            "detectors": float(t.sizes[0]),
            "synapses": float(t.sizes[1]),
            "gate": self.gate(),
            "state_mb": self.synapses.nbytes() / 1e6,
        }

    def reset_counters(self) -> None:
        """The memory's figures are its tables' (`rates`): nothing to reset."""


KIND = KindSpec(
    name="memory",
    summary="delay-line detectors, plastic synapses onto byte neurons and a plastic mixer",
    settings=MemoryConfig,
    default_rule="detector_stdp",  # its own defaults were chosen for the memory
    default_reward=("feedback",),
    default_targets=("readout",),
    layer=lambda site, vocab_size, config, rng: MemoryLayer(site, vocab_size, config),
    checks=check_memory_config,
)
