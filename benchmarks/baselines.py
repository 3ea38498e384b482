"""Counting and compression anchors for `plastic bench adapt`: what plasticity must beat.

These are benchmarks, not product (the product's adapters never count):

- `ngram_mix_bits`: a byte n-gram with Witten-Bell interpolation (orders 0-6; Witten &
  Bell 1991, interpolated as in Chen & Goodman 1999, eq. 11) that learns from the stream
  alone, predicting each byte before counting it, mixed online with the frozen backbone:
  p = w_k p_frozen + (1 - w_k) p_ngram, w_k = sigmoid(theta_k), one theta per bucket k =
  the longest context order seen before (0..6, or 7: none), updated after each byte by
  SGD on the log loss in nats (rate 0.02, theta = 0 at the start; the PAQ-style mixer of
  Mahoney 2005 with one input pair);
- `ppmd_bits`: PPMd variant H (Shkarin 2002, 7-Zip's PPMd; the `pyppmd` package);
- `compressor_bits`: bzip2 -9 and xz (preset 9 | extreme) from the standard library.

Vocabulary: the backbone's logits have 260 entries (256 bytes + 4 specials). p_frozen is
the softmax over all 260 (exactly what `frozen` scores) and the n-gram gives the specials
zero mass, so the mixture is a proper distribution over the same 260 symbols.

The n-gram lives in open-addressing hash tables keyed by the full context (order, up to 6
bytes, and symbol packed into one uint64; no collisions, no approximation), doubled when
half full. One Numba call scores the whole stream (100 kB in well under a second).

For prototyping on a cached backbone pass (`plastic.plasticity.prequential.cached_pass`):
`ngram_mix_bits(bpass.logits, bpass.data)` -> bits [N]; `ppmd_bits(data)` -> bits/byte
(best of max_order 6 / 8 / 16); `ngram_mix_run` for the parts (p_ngram, bucket) and the
state (to read another text with learning off, as the forgetting figure does).
"""

from __future__ import annotations

import bz2
import lzma
import math
import time
from typing import NamedTuple

import numpy as np
from numba import njit

from plastic.errors import ConfigError
from plastic.plasticity.prequential import logits_bits

MAX_ORDER = 6
BUCKETS = MAX_ORDER + 2  # longest context order seen before: 0..6, and 7 for none
NO_CONTEXT = MAX_ORDER + 1
MIX_LR = 0.02
EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
PPMD_ORDERS = (6, 8, 16)
PPMD_MEMORY = 64 << 20
LN2 = math.log(2.0)


class NgramState(NamedTuple):
    """A Witten-Bell n-gram's counts and the mixer's weights, all preallocated.

    ctx_*: one slot per context (order + bytes): key, total count N, distinct symbols T.
    pair_*: one slot per (context, symbol): key and count. theta: the mixer, per bucket.
    """

    ctx_keys: np.ndarray  # uint64 [capacity], EMPTY where free
    ctx_total: np.ndarray  # int32 [capacity]
    ctx_distinct: np.ndarray  # int32 [capacity]
    pair_keys: np.ndarray  # uint64 [capacity]
    pair_count: np.ndarray  # int32 [capacity]
    theta: np.ndarray  # float64 [BUCKETS]
    used: np.ndarray  # int64 [2]: slots taken in the context and the pair tables

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self))


def ngram_state(capacity: int = 1 << 16) -> NgramState:
    """An empty state; its tables double (`_grow`) whenever they are half full."""
    if capacity < 16 or capacity & (capacity - 1):
        raise ConfigError(f"n-gram capacity must be a power of two >= 16, not {capacity}")
    return NgramState(
        np.full(capacity, EMPTY, np.uint64),
        np.zeros(capacity, np.int32),
        np.zeros(capacity, np.int32),
        np.full(capacity, EMPTY, np.uint64),
        np.zeros(capacity, np.int32),
        np.zeros(BUCKETS, np.float64),
        np.zeros(2, np.int64),
    )


def _grow(state: NgramState) -> NgramState:
    """The same counts and weights in tables twice as large (every key re-inserted)."""
    bigger = ngram_state(2 * state.ctx_keys.shape[0])
    for keys, new_keys, values, new_values in (
        (state.ctx_keys, bigger.ctx_keys, state[1:3], bigger[1:3]),
        (state.pair_keys, bigger.pair_keys, state[4:5], bigger[4:5]),
    ):
        taken = keys != EMPTY
        where = _relocate(keys[taken], new_keys)
        for old, new in zip(values, new_values, strict=True):
            new[where] = old[taken]
    bigger.theta[:] = state.theta
    bigger.used[:] = state.used
    return bigger


@njit(cache=True)
def _slot(keys: np.ndarray, key: np.uint64) -> int:
    """Where `key` is, or the free slot where it goes (linear probing, Fibonacci hash)."""
    mask = keys.shape[0] - 1
    i = np.int64((key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(24)) & mask
    while keys[i] != key and keys[i] != np.uint64(0xFFFFFFFFFFFFFFFF):
        i = (i + 1) & mask
    return i


@njit(cache=True)
def _context_key(data: np.ndarray, pos: int, order: int) -> np.uint64:
    """(order, data[pos-order:pos]) as one uint64: the order in bits 48-50, the bytes below."""
    key = np.uint64(0)
    for j in range(pos - order, pos):
        key = (key << np.uint64(8)) | np.uint64(data[j])
    return key | (np.uint64(order) << np.uint64(48))


@njit(cache=True)
def _claim(keys: np.ndarray, used: np.ndarray, slot: int, key: np.uint64) -> int:
    """The slot of `key`, inserting it if new; `slot` is where a lookup found it free
    (probed again if a key inserted since took that slot); counts a new key in used[0]."""
    found = slot
    if keys[found] != key:
        if keys[found] != np.uint64(0xFFFFFFFFFFFFFFFF):
            found = _slot(keys, key)
        if keys[found] != key:
            keys[found] = key
            used[0] += 1
    return found


@njit(cache=True)
def _relocate(keys: np.ndarray, new_keys: np.ndarray) -> np.ndarray:
    """Insert `keys` (distinct) into the table `new_keys`; the slot of each [len(keys)]."""
    where = np.empty(keys.shape[0], np.int64)
    for i in range(keys.shape[0]):
        j = _slot(new_keys, keys[i])
        new_keys[j] = keys[i]
        where[i] = j
    return where


@njit(cache=True)
def _ngram_mix_kernel(
    data: np.ndarray,
    p_frozen: np.ndarray,
    ctx_keys: np.ndarray,
    ctx_total: np.ndarray,
    ctx_distinct: np.ndarray,
    pair_keys: np.ndarray,
    pair_count: np.ndarray,
    theta: np.ndarray,
    used: np.ndarray,
    lr: float,
    learn: bool,
    start: int,
    p_ngram: np.ndarray,
    bucket: np.ndarray,
    bits: np.ndarray,
) -> int:
    """Score each byte of `data` from `start` before counting it (p_ngram, bucket, bits
    filled in place). Stops early, returning the next position, when a table would pass
    half full (the caller grows it); returns len(data) when done.

    With `learn` false neither the counts nor theta change (the forgetting read).
    """
    room = ctx_keys.shape[0] // 2 - (MAX_ORDER + 1)
    keys = np.empty(MAX_ORDER + 1, np.uint64)
    ctx_slot = np.empty(MAX_ORDER + 1, np.int64)
    pair_slot = np.empty(MAX_ORDER + 1, np.int64)
    for pos in range(start, data.shape[0]):
        if learn and max(used[0], used[1]) > room:
            return pos
        sym = np.uint64(data[pos])
        top = min(pos, MAX_ORDER)
        p = 1.0 / 256.0  # order -1: uniform over the bytes
        longest = NO_CONTEXT
        for order in range(top + 1):
            key = _context_key(data, pos, order)
            cs = _slot(ctx_keys, key)
            ps = _slot(pair_keys, (key << np.uint64(8)) | sym)
            keys[order] = key
            ctx_slot[order] = cs
            pair_slot[order] = ps
            n = ctx_total[cs]
            if n > 0:
                t = ctx_distinct[cs]
                c = pair_count[ps] if pair_keys[ps] != EMPTY else 0
                p = (c + t * p) / (n + t)
                longest = order
        pf = p_frozen[pos]
        w = 1.0 / (1.0 + math.exp(-theta[longest]))
        mixed = w * pf + (1.0 - w) * p
        p_ngram[pos] = p
        bucket[pos] = longest
        bits[pos] = -math.log2(mixed)
        if not learn:
            continue
        # SGD on -ln(mixed): d/d theta = -(pf - p) w (1 - w) / mixed
        theta[longest] += lr * (pf - p) * w * (1.0 - w) / mixed
        for order in range(top + 1):
            cs = _claim(ctx_keys, used[0:1], ctx_slot[order], keys[order])
            pair_key = (keys[order] << np.uint64(8)) | sym
            if pair_keys[pair_slot[order]] != pair_key:
                ctx_distinct[cs] += 1  # a symbol this context has not seen
            ps = _claim(pair_keys, used[1:2], pair_slot[order], pair_key)
            pair_count[ps] += 1
            ctx_total[cs] += 1
    return data.shape[0]


class NgramMixRun(NamedTuple):
    """What one read of a stream gives: bits [N] of the mixture, and its parts."""

    bits: np.ndarray  # float64 [N]
    p_ngram: np.ndarray  # float64 [N]: the n-gram's probability of each byte
    bucket: np.ndarray  # int64 [N]: longest context order seen before (7: none)


def ngram_mix_run(
    p_frozen: np.ndarray,
    data: bytes,
    state: NgramState | None = None,
    *,
    learn: bool = True,
    lr: float = MIX_LR,
) -> tuple[NgramMixRun, NgramState]:
    """Read `data` (p_frozen [N]: the frozen backbone's probability of each byte) with the
    n-gram mix from `state` (a fresh one if None); returns the run and the state after it.

    The state passed in is updated in place, or left behind for a larger copy when its
    tables fill up: use the one returned. `learn=False` changes nothing in it.
    """
    arr = np.frombuffer(data, np.uint8)
    p_frozen = np.ascontiguousarray(p_frozen, np.float64)
    if p_frozen.shape != arr.shape:
        raise ConfigError(f"p_frozen has shape {p_frozen.shape}, data {len(data)} bytes")
    if not np.all((p_frozen > 0) & (p_frozen <= 1)):
        raise ConfigError("p_frozen must be probabilities in (0, 1]")
    state = ngram_state() if state is None else state
    n = len(arr)
    run = NgramMixRun(np.empty(n), np.empty(n), np.empty(n, np.int64))
    pos = 0
    while True:
        pos = _ngram_mix_kernel(
            arr, p_frozen, *state, lr, learn, pos, run.p_ngram, run.bucket, run.bits
        )
        if pos == n:
            break
        state = _grow(state)
    return run, state


def frozen_probs(frozen_logits: np.ndarray, data: bytes) -> np.ndarray:
    """softmax(logits)[byte] over all the backbone's entries (260), per row, in float64."""
    if frozen_logits.ndim != 2 or frozen_logits.shape[0] != len(data):
        raise ConfigError(f"logits of shape {frozen_logits.shape} for {len(data)} bytes")
    return np.exp2(-logits_bits(frozen_logits, np.frombuffer(data, np.uint8)))


def ngram_mix_bits(frozen_logits: np.ndarray, data: bytes) -> np.ndarray:
    """Bits [N] of every byte of `data` under the n-gram mixed with the frozen backbone
    (frozen_logits [N, 260]: row s predicts data[s]); see the module doc."""
    run, _ = ngram_mix_run(frozen_probs(frozen_logits, data), data)
    return run.bits


def ppmd_order_bits(data: bytes, max_order: int, mem_size: int = PPMD_MEMORY) -> float:
    """Bits/byte of `data` compressed by PPMd variant H (7-Zip's): 8 x compressed / input.

    No end mark (as in .7z, whose header stores the size); the flush writes the range
    coder's last bytes, which are counted.
    """
    try:
        import pyppmd
    except ImportError:
        raise ConfigError(
            "ppmd needs the pyppmd package: pip install 'plastic-snn[bench]'"
        ) from None
    encoder = pyppmd.Ppmd7Encoder(max_order, mem_size)
    size = len(encoder.encode(data)) + len(encoder.flush(endmark=False))
    return 8.0 * size / len(data)


def ppmd_bits(data: bytes, orders: tuple[int, ...] = PPMD_ORDERS) -> float:
    """Bits/byte of `data` under PPMd H (64 MiB), the best of max_order in `orders`."""
    return min(ppmd_order_bits(data, order) for order in orders)


def compressor_bits(name: str, data: bytes) -> float:
    """Bits/byte of `data` under a standard-library compressor: 'bzip2' (-9) or 'xz'
    (preset 9 | extreme), whole container included."""
    if name == "bzip2":
        size = len(bz2.compress(data, 9))
    elif name == "xz":
        size = len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    else:
        raise ConfigError(f"unknown compressor {name!r}; choose bzip2 or xz")
    return 8.0 * size / len(data)


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    """(fn(*args, **kwargs), seconds it took)."""
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - t0
