"""The screen that chose the context gate's defaults (docs/results.md, fifth round).

Held-out text only: bytes 500,000-600,000 of Tiny Shakespeare and the Python docs, and bytes
200,000-300,000 and 700,000-800,000 of WikiText-2 valid (the two segments that forgot the
most in the fourth round); forgetting on the first 50,000 bytes of Gutenberg valid.

1. The fourth round's default (lambda 0.4, q 2.5, r 0.5, no context gate) reads each
   stream prequentially, learning; every position's memory score (the sharpened delta the
   mix reads) is kept, then the same for the Gutenberg text read with learning off.
2. For each gate setting, `ContextGate` (the product's class) follows the same text: the
   signature learns every learnt token, the context reads every position, and the mix is
   recomputed with lambda' x g. Learning is not re-run (the weights stay those of step 1,
   so a setting's effect through the rewards is left out); the closed-loop check of the
   chosen setting is `plastic bench adapt` (docs/results.md).

Run from the repository root (about 15 minutes on the 2-core dev machine):

    python benchmarks/results/context-gate-2026-11-23/screen.py > screen.txt
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch

from plastic.models.checkpoint import resolve_model
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.plasticity.context_gate import ContextGate
from plastic.plasticity.prequential import BackbonePass, cached_pass, replay_bits

DATA = Path("../shared/data")
CACHE = Path("runs/adapt-cache")
STREAMS = {
    "shakespeare@500k": ("tinyshakespeare.txt", 500_000),
    "python-docs@500k": ("python-3.11-docs.txt", 500_000),
    "wikitext2@200k": ("wikitext-2-raw/wiki.valid.raw", 200_000),
    "wikitext2@700k": ("wikitext-2-raw/wiki.valid.raw", 700_000),
}
CONTEXT_TAUS = (300, 600, 1000)
SIGNATURE_TAUS = (500, 2000, 5000)
TOLERANCES = (0.0015, 0.002, 0.003)
# the default the gate was screened on (the mix was re-tuned with the gate on afterwards)
FOURTH_ROUND = AdapterConfig(
    cache_mix=0.4, confidence_power=2.5, mix_doubt_power=0.5, context_tau=0.0
)


def read(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def capture(model, config: AdapterConfig, stream: BackbonePass, forget: BackbonePass):
    """Memory scores [N, V] on the stream (learning) and on the forgetting text (frozen)."""
    plastic = PlasticModel(model)
    layer = plastic.add_adapter("screen", config).layers["readout"]
    original, scores = layer.contribute, []

    def contribute(b, s, row, live, token=-1):
        original(b, s, row, live, token)
        spoke = layer.spikes[:, b, s, :].any()
        scores.append(layer.delta.copy() if spoke else np.zeros_like(layer.delta))

    layer.contribute = contribute
    with plastic.observing():
        replay_bits(plastic, stream)
    on_stream = np.stack(scores)
    scores.clear()
    with plastic.frozen():
        replay_bits(plastic, forget)
    return on_stream, np.stack(scores)


def softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mixed_bits(bpass: BackbonePass, scores: np.ndarray, gates: np.ndarray, cfg) -> float:
    """Mean bits/byte of the mix with lambda' = l c^q d^r g (kernels.mix_cache, vectorised)."""
    target = np.frombuffer(bpass.data, np.uint8).astype(np.int64)
    rows = np.arange(len(target))
    backbone = softmax(bpass.logits)
    memory = softmax(scores)
    spoke = np.abs(scores).sum(axis=1) > 0
    lam = cfg.cache_mix * memory.max(axis=1) ** cfg.confidence_power
    lam *= (1.0 - backbone.max(axis=1)) ** cfg.mix_doubt_power
    lam = np.where(spoke, lam * gates, 0.0)
    p = (1 - lam) * backbone[rows, target] + lam * memory[rows, target]
    return float(-np.log2(p).mean())


def gates_along(stream: BackbonePass, forget: BackbonePass, gate: ContextGate):
    """g at every position of the stream (the signature learning as it goes), then of the
    forgetting text (signature fixed, its context started at the signature)."""
    steps = stream.site_spikes("readout", 0, 1).shape[0]
    counts = stream.spike_counts("readout", 0, len(stream))
    context = gate.context(0, live=True)
    gate.restart(context)
    on_stream = np.empty(len(stream))
    raster = np.zeros((steps, gate.n), np.uint8)
    for s in range(len(stream)):
        if s > 0:  # the previous position is learnt from when this token arrives
            raster[:] = stream.site_spikes("readout", s - 1, s)[:, 0, 0]
            gate.learn(raster)
        gate.read(context, counts[s], steps)
        on_stream[s] = gate.gate(context)
    scored = gate.context(0, live=False)
    gate.restart(scored)
    f_counts = forget.spike_counts("readout", 0, len(forget))
    on_forget = np.empty(len(forget))
    for s in range(len(forget)):
        gate.read(scored, f_counts[s], steps)
        on_forget[s] = gate.gate(scored)
    return on_stream, on_forget


def main() -> None:
    torch.set_num_threads(1)
    model = resolve_model(None)
    forget, _ = cached_pass(model, read(DATA / "gutenberg/gutenberg.valid.txt", 0, 50_000), CACHE)
    frozen_forget = float(forget.frozen_bits().mean())
    ungated = FOURTH_ROUND
    print(
        "| stream | tau | signature_tau | tolerance | bits (no gate) | bits (gate) "
        "| forgetting (no gate) | forgetting (gate) | mean g on stream | mean g on Gutenberg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (file, offset) in STREAMS.items():
        stream, _ = cached_pass(model, read(DATA / file, offset, 100_000), CACHE)
        scores, f_scores = capture(model, ungated, stream, forget)
        ones, f_ones = np.ones(len(stream)), np.ones(len(forget))
        base = mixed_bits(stream, scores, ones, ungated)
        base_f = mixed_bits(forget, f_scores, f_ones, ungated) - frozen_forget
        for tau, sig_tau, tol in itertools.product(CONTEXT_TAUS, SIGNATURE_TAUS, TOLERANCES):
            gate = ContextGate(stream.sizes["readout"], tau, sig_tau, tol)
            g, g_f = gates_along(stream, forget, gate)
            bits = mixed_bits(stream, scores, g, ungated)
            f = mixed_bits(forget, f_scores, g_f, ungated) - frozen_forget
            print(
                f"| {name} | {tau} | {sig_tau} | {tol} | {base:.4f} | {bits:.4f} | "
                f"{base_f:+.4f} | {f:+.4f} | {g.mean():.3f} | {g_f.mean():.3f} |",
                flush=True,
            )
    print(f"(bits of the frozen Gutenberg text: {frozen_forget:.4f})", file=sys.stderr)


if __name__ == "__main__":
    main()
