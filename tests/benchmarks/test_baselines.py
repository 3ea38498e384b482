"""The counting and compression anchors of `plastic bench adapt` (`baselines`)."""

from __future__ import annotations

import bz2
import math
import os
import sys
from collections import defaultdict

import numpy as np
import pytest
from plastic_benchmarks.baselines import (
    BUCKETS,
    MAX_ORDER,
    MIX_LR,
    NO_CONTEXT,
    compressor_bits,
    frozen_probs,
    ngram_mix_bits,
    ngram_mix_run,
    ngram_state,
    ppmd_bits,
    ppmd_order_bits,
)

from plastic.errors import ConfigError

TEXT = (
    b"To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    b"the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
    b"and by opposing end them. To die, to sleep; no more; and by a sleep to say we end the "
    b"heart-ache and the thousand natural shocks that flesh is heir to: 'tis a consummation."
)[:300]


def witten_bell_reference(data: bytes) -> tuple[list[np.ndarray], list[int]]:
    """Per position: the full 256-way interpolated Witten-Bell distribution from dict counts
    of everything before it, and the longest order whose context was seen (7: none)."""
    counts: dict[bytes, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    dists, longest = [], []
    for pos in range(len(data)):
        dist, top = np.full(256, 1 / 256), NO_CONTEXT
        for order in range(min(pos, MAX_ORDER) + 1):
            seen = counts.get(data[pos - order : pos])
            if seen:
                total, distinct = sum(seen.values()), len(seen)
                c = np.zeros(256)
                for sym, k in seen.items():
                    c[sym] = k
                dist, top = (c + distinct * dist) / (total + distinct), order
        dists.append(dist)
        longest.append(top)
        for order in range(min(pos, MAX_ORDER) + 1):
            counts[data[pos - order : pos]][data[pos]] += 1
    return dists, longest


@pytest.mark.parametrize("capacity", [16, 1 << 16])  # 16: the tables grow many times
def test_witten_bell_equals_direct_counts(capacity: int) -> None:
    dists, longest = witten_bell_reference(TEXT)
    assert all(d.sum() == pytest.approx(1.0) for d in dists)
    run, state = ngram_mix_run(np.full(len(TEXT), 0.5), TEXT, ngram_state(capacity))
    expected = [d[b] for d, b in zip(dists, TEXT, strict=True)]
    np.testing.assert_allclose(run.p_ngram, expected, rtol=1e-12)
    assert run.bucket.tolist() == longest
    assert longest[0] == NO_CONTEXT and longest[1] == 0 and MAX_ORDER in longest
    contexts = {TEXT[p - k : p] for p in range(len(TEXT)) for k in range(min(p, MAX_ORDER) + 1)}
    pairs = {TEXT[p - k : p + 1] for p in range(len(TEXT)) for k in range(min(p, MAX_ORDER) + 1)}
    assert state.used.tolist() == [len(contexts), len(pairs)]


def test_reading_with_learning_off_changes_nothing() -> None:
    _, state = ngram_mix_run(np.full(len(TEXT), 0.5), TEXT)
    before = [a.copy() for a in state]
    other = b"It was a bright cold day in April, and the clocks were striking thirteen."
    run, after = ngram_mix_run(np.full(len(other), 0.5), other, state, learn=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # the counts of TEXT are used: "the " was seen there, so order 4 predicts after "the"
    assert run.bucket[other.index(b"the ") + 3] >= 3


def test_mixer_weight_moves_toward_the_better_expert() -> None:
    data = bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8))
    # random bytes, a backbone that knows them: w -> frozen (theta up) in every bucket used
    run, state = ngram_mix_run(np.full(len(data), 0.9), data)
    used = np.unique(run.bucket)
    assert (state.theta[used] > 0).all()
    assert run.bits[-500:].mean() < 0.5
    # a repeated line, a backbone that knows nothing: w -> n-gram (theta down)
    line = (b"abcdefghij" * 200)[:2000]
    run, state = ngram_mix_run(np.full(len(line), 1e-3), line)
    assert state.theta[MAX_ORDER] < -1 and run.bits[-500:].mean() < 0.1
    # one step, by hand: bucket "none", w = 1/2, d(-ln p)/d theta = -(pf - 1/256) w (1-w) / p
    run, state = ngram_mix_run(np.array([0.9]), b"x")
    mixed = 0.5 * 0.9 + 0.5 / 256
    assert run.bits[0] == pytest.approx(-math.log2(mixed))
    assert state.theta[NO_CONTEXT] == pytest.approx(MIX_LR * (0.9 - 1 / 256) * 0.25 / mixed)
    assert state.theta.shape == (BUCKETS,)


def test_ngram_mix_bits_mixes_with_the_softmax_over_the_whole_vocabulary() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(len(TEXT), 260)).astype(np.float32)
    logits[:, 256:] += 3.0  # the specials take real mass: the mix must keep it out
    pf = frozen_probs(logits, TEXT)
    z = np.exp(logits.astype(np.float64))
    np.testing.assert_allclose(pf, z[np.arange(len(TEXT)), list(TEXT)] / z.sum(1), rtol=1e-9)
    bits = ngram_mix_bits(logits, TEXT)
    run, _ = ngram_mix_run(pf, TEXT)
    assert bits.tolist() == run.bits.tolist() and bits.shape == (len(TEXT),)
    with pytest.raises(ConfigError):
        ngram_mix_bits(logits[:-1], TEXT)
    with pytest.raises(ConfigError):
        ngram_mix_run(np.zeros(len(TEXT)), TEXT)


def test_compressors_give_sane_bits_per_byte() -> None:
    repeated = b"the quick brown fox jumps over the lazy dog. " * 400
    noise = os.urandom(20_000)
    for bpb in (
        ppmd_bits(repeated),
        compressor_bits("bzip2", repeated),
        compressor_bits("xz", repeated),
    ):
        assert 0 < bpb < 1
    for bpb in (ppmd_bits(noise), compressor_bits("bzip2", noise), compressor_bits("xz", noise)):
        assert 7.9 < bpb < 8.2
    assert compressor_bits("bzip2", repeated) == 8 * len(bz2.compress(repeated, 9)) / len(repeated)
    assert ppmd_bits(repeated) == min(ppmd_order_bits(repeated, k) for k in (6, 8, 16))
    with pytest.raises(ConfigError):
        compressor_bits("zip", repeated)


def test_ppmd_size_is_what_a_decoder_needs() -> None:
    pyppmd = pytest.importorskip("pyppmd")
    data = TEXT * 10
    enc = pyppmd.Ppmd7Encoder(8, 64 << 20)
    packed = enc.encode(data) + enc.flush(endmark=False)
    assert pyppmd.Ppmd7Decoder(8, 64 << 20).decode(packed, len(data)) == data
    assert ppmd_order_bits(data, 8) == 8 * len(packed) / len(data)


def test_ppmd_without_pyppmd_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyppmd", None)
    with pytest.raises(ConfigError, match="pip install 'plastic-snn\\[bench\\]'"):
        ppmd_bits(TEXT)
