"""The trace format, version 1: names, dimensions, dtypes and codecs of a trace store.

A trace store is a Zarr v3 group (documented for users in docs/trace-format.md):

    /                       attrs: plastic_trace (schema version), plastic_version, created,
                            backbone, adapters (configs), sites, sessions, committed
    tokens/{id,flags,bits,reward,baseline}              [token]
    events/{kind,site,a,b,value,token}                  [event]
    turns/{kind,start_token,end_token,start_event,end_event,value,changed,reverted} [turn]
    checkpoints/{event,turn}                            [checkpoint]
    states/{event}                                      [state]
    sites/site<i>/pre        bool [step, timestep, pre_neuron]
    sites/site<i>/post       bool [step, timestep, post_neuron]
    sites/site<i>/token      int64 [step]
    sites/site<i>/flush_rows int64 [row]
    sites/site<i>/checkpoint_weights float32 [checkpoint, pre_neuron, post_neuron]
    sites/site<i>/state_weights      float32 [state, pre_neuron, post_neuron]
    sites/site<i>/rule_state/<rule>/<key>  [state, ...]  (the rule's state arrays)
    sites/site<i>/context/<key>            [state, ...]  (a readout's context signature)
    sites/site<i>/reward_state/<key>       [state, ...]  (the adapter's reward sources)

A context memory's site (kind "memory") holds instead what its reads were given and its
variable-size state (`plastic.replay.memory_state`):

    sites/site<i>/read_id          uint16 [read]           tokens of the live reads
    sites/site<i>/read_logits      float32 [read, vocab]   the logits each read was given
    sites/site<i>/state_blob       uint8 [state_byte]      saved states, one safetensors
    sites/site<i>/state_end        int64 [state]             blob each (its end offset)
    sites/site<i>/checkpoint_blob  uint8 [checkpoint_byte] checkpoints, likewise
    sites/site<i>/checkpoint_end   int64 [checkpoint]

Every array is appended along its first axis. The root attribute `committed` holds the
length of every array at the last commit (written after the chunks): readers clip to it,
so a store whose writer was killed reads as it was at its last commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA_NAME = "plastic-trace"
SCHEMA_VERSION = 1

# events/kind
STEP, REWARD, SYNC, FLUSH_ROWS = 0, 1, 2, 3
SNAPSHOT, RESTORE, DROP = 4, 5, 6
CAP, MARK, BLEND, RESET, LOAD = 7, 8, 9, 10, 11
TURN_BEGIN, TURN_END, FEEDBACK, UNDO, ENGINE_RESET, SESSION = 12, 13, 14, 15, 16, 17
SCALE = 18
MEMORY_READ, FORGET = 19, 20  # a context memory's live read (a: first read row, b: rows,
# value: READ_LEARN | READ_GENERATING), and its stream boundary (forget_context)
READ_LEARN, READ_GENERATING = 1, 2
EVENT_NAMES = {
    STEP: "step",
    REWARD: "reward",
    SYNC: "sync",
    FLUSH_ROWS: "flush_rows",
    SNAPSHOT: "snapshot",
    RESTORE: "restore",
    DROP: "drop",
    CAP: "cap",
    MARK: "mark",
    BLEND: "blend",
    RESET: "reset",
    LOAD: "load",
    TURN_BEGIN: "turn_begin",
    TURN_END: "turn_end",
    FEEDBACK: "feedback",
    UNDO: "undo",
    ENGINE_RESET: "engine_reset",
    SESSION: "session",
    SCALE: "scale",
    MEMORY_READ: "memory_read",
    FORGET: "forget",
}

# turns/kind
TURN, FEEDBACK_TURN, UNDO_TURN, RESET_TURN, SESSION_TURN, CLOSE_TURN = 0, 1, 2, 3, 4, 5
TURN_NAMES = {
    TURN: "turn",
    FEEDBACK_TURN: "feedback",
    UNDO_TURN: "undo",
    RESET_TURN: "reset",
    SESSION_TURN: "session",
    CLOSE_TURN: "close",
}

# tokens/flags bits
GENERATED, LEARNING, PASS_START = 1, 2, 4

TOKEN_CHUNK = 16384
EVENT_CHUNK = 16384
STEP_CHUNK = 256
ROW_CHUNK = 16384


@dataclass(frozen=True)
class ArraySpec:
    """One array of the store: dtype, the dimension names, chunk length along axis 0."""

    dtype: str
    dims: tuple[str, ...]
    chunk: int
    fill: Any = 0


TOKENS = {
    "id": ArraySpec("uint16", ("token",), TOKEN_CHUNK),
    "flags": ArraySpec("uint8", ("token",), TOKEN_CHUNK),
    "bits": ArraySpec("float32", ("token",), TOKEN_CHUNK, float("nan")),
    "reward": ArraySpec("float32", ("token",), TOKEN_CHUNK, float("nan")),
    "baseline": ArraySpec("float32", ("token",), TOKEN_CHUNK, float("nan")),
}
EVENTS = {
    "kind": ArraySpec("uint8", ("event",), EVENT_CHUNK),
    "site": ArraySpec("int16", ("event",), EVENT_CHUNK, -1),
    "a": ArraySpec("int64", ("event",), EVENT_CHUNK, -1),
    "b": ArraySpec("int64", ("event",), EVENT_CHUNK, -1),
    "value": ArraySpec("float64", ("event",), EVENT_CHUNK, float("nan")),
    "token": ArraySpec("int64", ("event",), EVENT_CHUNK, -1),
}
TURNS = {
    "kind": ArraySpec("uint8", ("turn",), 4096),
    "start_token": ArraySpec("int64", ("turn",), 4096),
    "end_token": ArraySpec("int64", ("turn",), 4096),
    "start_event": ArraySpec("int64", ("turn",), 4096),
    "end_event": ArraySpec("int64", ("turn",), 4096),
    "value": ArraySpec("float32", ("turn",), 4096, float("nan")),
    "changed": ArraySpec("bool", ("turn",), 4096, False),
    "reverted": ArraySpec("bool", ("turn",), 4096, False),
}
CHECKPOINTS = {
    "event": ArraySpec("int64", ("checkpoint",), 4096),
    "turn": ArraySpec("int64", ("checkpoint",), 4096),
}
STATES = {"event": ArraySpec("int64", ("state",), 4096)}

GROUPS = {"tokens": TOKENS, "events": EVENTS, "turns": TURNS, "checkpoints": CHECKPOINTS}
GROUPS["states"] = STATES

# network/<site>: per live token, the spikes of every neuron of a backbone site summed over
# the token's T timesteps [token, neuron] (uint8; NETWORK_UNKNOWN where not recorded). One
# row per row of tokens/*, so its committed length is the committed token count.
NETWORK = "network"
NETWORK_UNKNOWN = 255
NETWORK_CHUNK = 1024


def network_spec(site: str) -> ArraySpec:
    """network/<site>: dims (token, <site>.neuron): sites differ in size, so each names its
    own neuron axis (xarray opens the group as one dataset)."""
    return ArraySpec("uint8", ("token", f"{site}.neuron"), NETWORK_CHUNK, NETWORK_UNKNOWN)


# How a site's learning is recorded, as its adapter layer declares (`trace_form`):
SYNAPSES = "synapses"  # a weight matrix: pre/post rasters per rule step, weight checkpoints
READS = "reads"  # a variable-size state: what each read was given, state blobs
TRACE_FORMS = (SYNAPSES, READS)


@dataclass(frozen=True)
class SiteSpec:
    """One recorded adapter site: where its arrays live and their shapes."""

    index: int
    adapter: str
    site: str
    kind: str  # the adapter kind (informative: the arrays follow `form`)
    n_pre: int  # (reads: 0)
    n_post: int  # (reads: the vocabulary, the width of its logits rows)
    timesteps: int  # rows of the pre/post rasters passed to each rule step (reads: 0)
    form: str = SYNAPSES  # one of TRACE_FORMS

    @property
    def records_reads(self) -> bool:
        """True for a site recorded as reads and state blobs (no weight matrix, no rasters)."""
        return self.form == READS

    @property
    def key(self) -> str:
        return f"{self.adapter}/{self.site}"

    @property
    def group(self) -> str:
        return f"sites/site{self.index}"

    def arrays(self) -> dict[str, tuple[tuple[int, ...], ArraySpec]]:
        """Array name -> (shape after axis 0, spec)."""
        if self.records_reads:
            return memory_arrays(self.n_post)
        t, n_pre, n_post = self.timesteps, self.n_pre, self.n_post
        w_chunk = max(1, min(16, (8 << 20) // max(4 * n_pre * n_post, 1)))
        return {
            "pre": ((t, n_pre), ArraySpec("bool", ("step", "timestep", "pre_neuron"), STEP_CHUNK)),
            "post": (
                (t, n_post),
                ArraySpec("bool", ("step", "timestep", "post_neuron"), STEP_CHUNK),
            ),
            "token": ((), ArraySpec("int64", ("step",), TOKEN_CHUNK, -1)),
            "flush_rows": ((), ArraySpec("int64", ("row",), ROW_CHUNK, -1)),
            "checkpoint_weights": (
                (n_pre, n_post),
                ArraySpec("float32", ("checkpoint", "pre_neuron", "post_neuron"), w_chunk),
            ),
            "state_weights": (
                (n_pre, n_post),
                ArraySpec("float32", ("state", "pre_neuron", "post_neuron"), w_chunk),
            ),
        }

    def committed_lengths(self, counts: dict[str, Any], committed: dict[str, Any]) -> dict:
        """Array name -> committed rows, from the site's commit counts and the store's."""
        if self.records_reads:
            return {
                "read_id": int(counts["steps"]),
                "read_logits": int(counts["steps"]),
                "state_blob": int(counts.get("state_bytes", 0)),
                "state_end": int(committed["states"]),
                "checkpoint_blob": int(counts.get("checkpoint_bytes", 0)),
                "checkpoint_end": int(committed["checkpoints"]),
            }
        return {
            "pre": int(counts["steps"]),
            "post": int(counts["steps"]),
            "token": int(counts["steps"]),
            "flush_rows": int(counts["rows"]),
            "checkpoint_weights": int(committed["checkpoints"]),
            "state_weights": int(committed["states"]),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "adapter": self.adapter,
            "site": self.site,
            "kind": self.kind,
            "n_pre": self.n_pre,
            "n_post": self.n_post,
            "timesteps": self.timesteps,
            "form": self.form,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteSpec:
        """The spec from a store's attributes (ValueError on an unknown trace form)."""
        # traces written before sites declared their form: only the memory records reads
        form = str(data.get("form", READS if data["kind"] == "memory" else SYNAPSES))
        if form not in TRACE_FORMS:
            raise ValueError(f"unknown trace form {form!r}")
        return cls(
            int(data["index"]),
            str(data["adapter"]),
            str(data["site"]),
            str(data["kind"]),
            int(data["n_pre"]),
            int(data["n_post"]),
            int(data["timesteps"]),
            form,
        )


MEMORY_READ_CHUNK = 64  # logits rows per chunk (a partial chunk is rewritten per commit)
BLOB_CHUNK = 1 << 18


def memory_arrays(vocab: int) -> dict[str, tuple[tuple[int, ...], ArraySpec]]:
    """The arrays of a context memory's site (see the module docstring)."""
    return {
        "read_id": ((), ArraySpec("uint16", ("read",), TOKEN_CHUNK)),
        "read_logits": ((vocab,), ArraySpec("float32", ("read", "vocab"), MEMORY_READ_CHUNK)),
        "state_blob": ((), ArraySpec("uint8", ("state_byte",), BLOB_CHUNK)),
        "state_end": ((), ArraySpec("int64", ("state",), 4096, -1)),
        "checkpoint_blob": ((), ArraySpec("uint8", ("checkpoint_byte",), BLOB_CHUNK)),
        "checkpoint_end": ((), ArraySpec("int64", ("checkpoint",), 4096, -1)),
    }


def rule_state_dims(key: str, shape: tuple[int, ...], site: SiteSpec) -> tuple[str, ...]:
    """Dimension names of one rule-state array of shape `shape` (without the state axis)."""
    if shape == (site.n_pre, site.n_post):
        return ("state", "pre_neuron", "post_neuron")
    if len(shape) == 1 and shape[0] == site.n_pre:
        return ("state", "pre_neuron")
    if len(shape) == 1 and shape[0] == site.n_post:
        return ("state", "post_neuron")
    return ("state", *(f"{key}_dim{k}" for k in range(len(shape))))


def codec_for(dtype: str) -> Any:
    """Blosc(zstd) with bit-shuffle for booleans (sparse rasters), byte-shuffle otherwise."""
    from zarr.codecs import BloscCodec

    shuffle = "bitshuffle" if np.dtype(dtype) == np.bool_ else "shuffle"
    return BloscCodec(cname="zstd", clevel=3, shuffle=shuffle)
