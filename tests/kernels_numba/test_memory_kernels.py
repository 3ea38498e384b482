"""The context memory's fused kernel against a direct Python reading of its equations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plastic.kernels_numba.cpu_memory import backbone_table, read_chunk, score_chunk
from plastic.kernels_numba.memory_layout import (
    MemoryParams,
    grown,
    mixer_sets,
    new_reading,
    new_tables,
)
from plastic.rules import delta_mixer

PARAMS = MemoryParams(np.array([1, 2, 4], np.int64), 2.0, 0.9, 0.01, 2, 10.0, 0.05, 0.2)
TEXT = b"the cat sat on the mat. the cat ate the rat. " * 6 + b"a bat sat."
BOS = 256


def tables_of(detectors: int, synapses: int):
    """Empty tables whose mixer trusts the longest chain 0.8 (delta_mixer's initial weights)."""
    mixer = delta_mixer.initial_weights(
        mixer_sets(PARAMS), len(PARAMS.orders) + 1, delta_mixer.Params(init_top=0.8)
    )
    return new_tables(PARAMS, detectors, synapses, mixer)


class ReferenceMemory:
    """The module docstring of cpu_memory, written out with dicts (no hashing, no pool)."""

    def __init__(self, params: MemoryParams, init_top: float) -> None:
        self.p = params
        k = len(params.orders)
        self.detectors: dict[tuple[int, ...], tuple[np.float32, dict[int, np.float32]]] = {}
        self.mixer = np.zeros((mixer_sets(params), k + 1))
        self.mixer[:, 0], self.mixer[:, k] = 1 - init_top, init_top
        self.history: list[int] = []
        self.gate = 0.0
        self.pending = None

    def learn(self, y: int) -> None:
        if self.pending is None or y >= 256:
            self.pending = None
            return
        contexts, logs, expect, q, pb, bucket = self.pending
        self.pending = None
        adv = math.log2(q[y]) - math.log2(pb[y])
        self.gate = min(max(self.gate + (adv - self.gate) / self.p.gate_tau, -0.2), 0.2)
        self.mixer[bucket] += self.p.mixer_rate * (logs[:, y] - expect)
        for context in contexts:
            trace, synapses = self.detectors.get(context, (np.float32(0), {}))
            n = trace * self.p.decay
            rate = 1.0 / (n + 1.0)
            for b in synapses:
                w = synapses[b]
                synapses[b] = w + np.float32(rate) * (1 - w) if b == y else w - np.float32(rate) * w
            if y not in synapses:
                synapses[y] = np.float32(rate)
            self.detectors[context] = (np.float32(n + 1.0), synapses)

    def read(self, token: int, row: np.ndarray) -> np.ndarray:
        self.learn(token)
        self.history = [] if token >= 256 else ([token] + self.history)[: max(self.p.orders)]
        z = row.astype(np.float64) - row.max()
        full = np.exp(z) / np.exp(z).sum()
        byte_mass = full[:256].sum()
        pb = full[:256] / byte_mass
        chain = pb.copy()
        logs = [np.log(np.maximum(pb, 1e-12))]
        contexts, longest, confidence = [], -1, 0.0
        for j, order in enumerate(self.p.orders):
            if order <= len(self.history):
                context = (int(order), *self.history[:order])
                contexts.append(context)
                if context in self.detectors and self.detectors[context][0] > 0:
                    trace, synapses = self.detectors[context]
                    e = len(synapses) * self.p.prior / (trace + len(synapses) * self.p.prior)
                    chain = chain * e
                    for b, w in synapses.items():
                        chain[b] += (1 - e) * w
                    longest, confidence = j, 1 - e
            logs.append(np.log(np.maximum(chain, 1e-12)) if longest == j else logs[-1])
        logs = np.array(logs)
        k = self.p.confidence_buckets
        bucket = (longest + 1) * k + min(int(confidence * k), k - 1)
        mix = self.mixer[bucket] @ logs
        q = np.exp(mix - mix.max())
        q /= q.sum()
        expect = logs @ q
        g = 1 / (1 + math.exp(-self.gate / self.p.gate_scale))
        out = np.log(np.maximum(((1 - g) * pb + g * q) * byte_mass, 1e-30))
        self.pending = (contexts, logs, expect, q, pb, bucket)
        return np.concatenate([out, np.log(np.maximum(full[256:], 1e-30))])


def _stream(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([BOS, *TEXT[:-1]], np.int64)
    logits = np.random.default_rng(seed).normal(0, 2, (len(ids), 260)).astype(np.float32)
    return ids, logits


def _kernel_read(ids, logits, detectors=4096, synapses=4096, chunk=64):
    tables = tables_of(detectors, synapses)
    reading = new_reading(PARAMS)
    out = logits.copy()
    start = 0
    while start < len(ids):
        stop = min(start + chunk, len(ids))
        done = read_chunk(
            tables, reading, PARAMS, ids[start:stop], ids[start:stop], out[start:stop], True, True
        )
        start += done
        if start < stop:
            tables = grown(tables, 2 * len(tables.det_key), 2 * len(tables.syn_post))
    return out, tables


def test_fused_kernel_equals_the_equations() -> None:
    ids, logits = _stream()
    out, tables = _kernel_read(ids, logits)
    ref = ReferenceMemory(PARAMS, 0.8)
    for s, token in enumerate(ids):
        expected = ref.read(int(token), logits[s])
        np.testing.assert_allclose(out[s], expected, rtol=0, atol=2e-5, err_msg=f"position {s}")
    assert int(tables.sizes[0]) == len(ref.detectors)
    np.testing.assert_allclose(tables.mixer, ref.mixer, atol=1e-6)


def test_growing_tables_change_nothing() -> None:
    ids, logits = _stream(1)
    big, _ = _kernel_read(ids, logits)
    small, tables = _kernel_read(ids, logits, detectors=16, synapses=16, chunk=7)
    assert len(tables.det_key) > 16
    np.testing.assert_array_equal(big, small)


def test_memory_learns_the_repeated_text() -> None:
    ids, logits = _stream(2)
    out, _ = _kernel_read(ids, logits)
    targets = np.array([*TEXT], np.int64)

    def bits(rows: np.ndarray) -> np.ndarray:
        z = rows.astype(np.float64) - rows.max(axis=1, keepdims=True)
        return (np.log(np.exp(z).sum(1)) - z[np.arange(len(rows)), targets]) / math.log(2)

    frozen, learnt = bits(logits), bits(out)
    tail = slice(len(TEXT) // 2, None)  # the repeats, once the memory has seen the sentence
    assert learnt[tail].mean() < 0.5 * frozen[tail].mean()


@pytest.mark.parametrize("token", [BOS, 258])
def test_special_tokens_empty_the_delay_line(token: int) -> None:
    tables = tables_of(64, 64)
    reading = new_reading(PARAMS)
    ids = np.array([97, 98, token, 99], np.int64)
    read_chunk(tables, reading, PARAMS, ids, ids, np.zeros((4, 260), np.float32), True, True)
    assert reading.meta[0] == 1 and reading.history[0] == 99


def test_full_tables_stop_growing_and_keep_learning() -> None:
    """Without `grow`, a reading never stops early: no detector or synapse is added past the
    tables' size, the existing ones keep learning, and the prediction stays a distribution."""
    ids, logits = _stream(3)
    tables = tables_of(16, 16)
    out = logits.copy()
    done = read_chunk(tables, new_reading(PARAMS), PARAMS, ids, ids, out, True, False)
    assert done == len(ids)
    assert int(tables.sizes[0]) == 16 and int(tables.sizes[1]) == 16
    assert np.all(np.isfinite(out))
    assert not np.array_equal(tables.det_trace, np.zeros(16, np.float32))


def test_scoring_gives_the_bits_reading_gives() -> None:
    """`score_chunk` (the drift guard's path: bits of each target only, the backbone's part
    precomputed) gives what `read_chunk` without learning and the rewritten rows' softmax
    give, special-token targets included; and it changes no table."""
    ids, logits = _stream(4)
    _, tables = _kernel_read(ids, logits)  # tables that learnt the text
    logits = np.random.default_rng(5).normal(0, 2, logits.shape).astype(np.float32)
    targets = np.array([*TEXT[:-1], 257], np.int64)  # the last one a special token
    rows = logits.copy()
    read_chunk(tables, new_reading(PARAMS), PARAMS, ids, ids, rows, False, False)
    z = rows.astype(np.float64) - rows.max(axis=1, keepdims=True)
    expected = (np.log(np.exp(z).sum(1)) - z[np.arange(len(z)), targets]) / math.log(2)
    before = [a.copy() for a in tables]
    n = len(ids)
    pbs, logs0, scale = np.empty((n, 256)), np.empty((n, 256)), np.empty(n)
    backbone_table(logits, targets, pbs, logs0, scale)
    bits = np.empty(n)
    score_chunk(tables, new_reading(PARAMS), PARAMS, ids, pbs, logs0, scale, targets, bits)
    np.testing.assert_allclose(bits, expected, rtol=0, atol=2e-6)
    f = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    frozen = (np.log(np.exp(f).sum(1)) - f[np.arange(n), targets]) / math.log(2)
    assert bits[:-1].mean() < 0.5 * frozen[:-1].mean()  # the memory's part is in the bits
    assert all(np.array_equal(a, b) for a, b in zip(before, tables, strict=True))
