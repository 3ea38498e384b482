"""What a replay did, in figures: weight change, distance to the recorded weights, and the
bits/byte of the recorded user text under the replayed and the recorded weights.

A counterfactual replay answers "what would this rule have learnt from this chat": its
final weights are compared with the recorded final weights (the trace's last checkpoint)
and with the session's start weights, and the text the user typed in the recorded chat
(every observed token, in order, at most MAX_TEXT_BYTES of it) is scored three ways:
the replayed weights, the recorded weights, the frozen backbone. A context memory's
weights are its whole state (`MemorySynapses.state_arrays`): its distances match synapses
by (detector key, byte) and add the mixer (`plastic.replay.memory_state.distance`).
Scoring reads the text
once with the backbone (`backbone_pass`) and scores each weight set over that pass
(`scored_bits`: exact for readout adapters), from a fresh state, learning nothing; every
adapter keeps the context signature the session started with, so the two weight sets
are compared under the same gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from plastic.models.tokenizer import BOS
from plastic.replay import schema as S
from plastic.replay.reader import TraceReader

if TYPE_CHECKING:
    from plastic.models.spiking_lm import SpikingLM

MAX_TEXT_BYTES = 1 << 18  # the recorded user text scored (its first 256 KiB)


def recorded_user_text(reader: TraceReader) -> bytes:
    """The bytes of every observed (not generated) token of the trace, in order."""
    ids = reader.read("tokens/id").astype(np.int64)
    flags = reader.read("tokens/flags")
    observed = ids[((flags & S.GENERATED) == 0) & (ids != BOS) & (ids < 256)]
    return observed.astype(np.uint8).tobytes()[:MAX_TEXT_BYTES]


def replayed_values(synapses: Mapping[str, Any]) -> dict[str, Any]:
    """Per site ("adapter/site") what the figures compare: the weights (float64), or a
    context memory's whole state."""
    out: dict[str, Any] = {}
    for key, syn in synapses.items():
        if getattr(syn, "tables", None) is not None:
            out[key] = syn.state_arrays()
        else:
            syn.sync()
            out[key] = syn.weights.astype(np.float64)
    return out


def start_weights(reader: TraceReader) -> dict[str, Any]:
    """Every site's weights (a memory: its state) when the first recorded session started."""
    session = reader.sessions[0]
    out: dict[str, Any] = {}
    for spec in reader.sites:
        rule = session["adapters"][spec.adapter]["rule"]
        weights, state = reader.state(spec, int(session["state"]), rule)
        out[spec.key] = state if spec.records_reads else weights.astype(np.float64)
    return out


def recorded_final_weights(reader: TraceReader) -> dict[str, np.ndarray] | None:
    """Every site's weights at the trace's last checkpoint (None: it has none)."""
    checkpoints = reader.checkpoints()
    if not checkpoints:
        return None
    last = checkpoints[-1].index
    return {
        spec.key: (
            reader.memory_checkpoint(spec, last)
            if spec.records_reads
            else reader.checkpoint_weights(spec, last).astype(np.float64)
        )
        for spec in reader.sites
    }


def weight_figures(
    start: Mapping[str, np.ndarray],
    recorded: Mapping[str, np.ndarray] | None,
    replayed: Mapping[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """Per site: ||W - W_start||_F of the replay (and of the recording), and the replay's
    distance to the recorded final weights (Frobenius and max abs)."""
    out: dict[str, dict[str, float]] = {}
    for key, w in replayed.items():
        if isinstance(w, Mapping):  # a context memory's state
            out[key] = _memory_figures(start[key], None if recorded is None else recorded[key], w)
            continue
        w = np.asarray(w, np.float64)
        row = {"replayed_change": float(np.linalg.norm(w - start[key]))}
        if recorded is not None:
            row["recorded_change"] = float(np.linalg.norm(recorded[key] - start[key]))
            row["distance_to_recorded"] = float(np.linalg.norm(w - recorded[key]))
            row["max_abs_diff_to_recorded"] = float(np.abs(w - recorded[key]).max())
        out[key] = row
    return out


def _memory_figures(start: Any, recorded: Any, replayed: Any) -> dict[str, float]:
    from plastic.replay.memory_state import distance

    row = {"replayed_change": distance(replayed, start)[0]}
    if recorded is not None:
        row["recorded_change"] = distance(recorded, start)[0]
        row["distance_to_recorded"], row["max_abs_diff_to_recorded"] = distance(replayed, recorded)
    return row


def text_figures(
    reader: TraceReader,
    backbone: SpikingLM,
    weight_sets: Mapping[str, Mapping[str, np.ndarray]],
    *,
    rule: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Bits/byte of the recorded user text under each weight set ("name" -> site weights)
    and under the frozen backbone; None when the trace holds no user text or an adapter
    feeds the backbone (residual: one backbone pass cannot score it)."""
    from plastic.plasticity.prequential import ScoringPass, backbone_pass, scored_bits
    from plastic.replay.closed_loop import build_model

    data = recorded_user_text(reader)
    if not data or any(spec.kind not in ("readout", "memory") for spec in reader.sites):
        return None
    memory = any(spec.records_reads for spec in reader.sites)
    sites = tuple(sorted({spec.site for spec in reader.sites}))
    bpass = backbone_pass(backbone, data, sites)
    prepared = ScoringPass.of(bpass)
    figures: dict[str, Any] = {
        "bytes": len(data),
        "frozen_bits_per_byte": float(bpass.frozen_bits().sum()) / len(data),
    }
    for name, weights in weight_sets.items():
        # a memory's recorded state is read with its recorded settings (changed ones may
        # not fit its tables, e.g. other orders)
        own = memory and name == "recorded"
        model = build_model(
            reader, backbone, rule=None if own else rule, params=None if own else params
        )
        try:
            for spec in reader.sites:
                syn = model.adapters[spec.adapter].layers[spec.site].synapses
                if spec.records_reads:
                    syn.load(None, weights[spec.key])
                    continue
                syn.set_weights(np.clip(weights[spec.key], syn.w_min, syn.w_max))
            bits = scored_bits(model, prepared)
        finally:
            for adapter in list(model.adapters):
                model.delete_adapter(adapter)
        figures[f"{name}_bits_per_byte"] = float(bits.sum()) / len(data)
    return figures
