"""The readout adapter: a Hebbian, cache-like memory from a site's spikes onto the logits.

Neurons: the site's population (pre, n_pre = site.size; by default the `readout` site, i.e.
the last block's feed-forward spikes) and one output neuron per token id (post, V).
W[n_pre, V] starts at 0, so attaching changes nothing until something is learnt.

Contribution to the logits of a position whose pre neurons spiked c_i times over the
token's T timesteps (event-driven: only the rows of neurons that fired are read):

    m_j          = sum_i c_i W[i, j] / sum_i c_i          (the spike-weighted mean row)
    delta_logits = g * sign(m_j) |m_j|^p                  (p = `sharpness`, default 3)

with g = gain (`scale`, default 14), or gain * (1 - max softmax(logits))^q when
`gate_power` q > 0 (off by default: measured, it cost more adaptation than the
forgetting it saved; see docs/log/2026-11-23-readout.md).

so |delta_logits| <= gain * max(|w_min|, |w_max|)^p whatever the firing rate, and the power
p makes the memory recall only for contexts whose spikes match a stored one closely: a
context sharing a third of its active neurons with a stored one gets 1/27 of its recall.
(Measured on a partly trained tiny backbone, valid 2.13 b/B, six user turns repeating a
made-up fact: p = 1 lowered the fact's bits/byte by 0.35, then the drift guard reverted
every further turn; p = 3 by 0.67, 3.41 -> 2.74, the probe kept within 0.02 b/B, a control
sentence unchanged at 2.01.)

With `cache_mix` l > 0 the delta is not added: it is the memory's score, and the position's
distribution becomes the neural cache's interpolation (Grave et al. 2017)

    p = (1 - l') softmax(logits) + l' softmax(delta_logits),
    l' = l * c^q * d^r,   c = max softmax(delta_logits),   d = 1 - max softmax(logits)

with q = `confidence_power` (c^q is dropped when `cache_mix_gated` is false) and
r = `mix_doubt_power` (0: no d), so no byte loses more than -log2(1 - l') bits to the memory,
whatever it holds: the damage on unrelated text ("forgetting") is bounded, and gated by the
memory's confidence c it is small. A power q > 1 lets a larger l speak where the memory is
sure (c near 1) while it stays quiet where it is unsure. The backbone's doubt d keeps the
memory out where the backbone is already sure, which is where a wrong recall costs the most
and a right one adds the least. Defaults l = 0.4, q = 2.5, r = 0.5
(docs/log/2026-11-23-readout.md, fourth round).

The context gate (`context_gate`; `context_tau` > 0, on by default) multiplies l' (or, when
the delta is added, the gain) by g in [0, 1]: 1 while the firing rates of the text being
read stay close to those of the text the memory learnt from, 0 once they are clearly not.
A memory learnt from WikiText-2 ("word , word") then stays quiet on a novel, which is where
the mix alone still cost ~0.012 b/B (docs/log/2026-11-23-readout.md, fifth round).
It cannot tell apart
texts that read alike (a taught fact and an unrelated sentence of the same chat), which is
why the mix is not made louder behind it.

Learning, once the next token x is known (observed, or chosen by the sampler), before the
forward pass of x: the rule runs over T + 2 timesteps with

    pre  = [0; spikes of the current token (T steps); 0]
    post = [onehot(recalled tokens other than x); 0 ... 0; onehot(x)]

x's output neuron fires one step after the context's spikes: a causal pre -> post pairing
(LTP, or eligibility for three-factor rules) on W[active pre, x]. The tokens this memory
recalled for the context (delta >= `recall_threshold` logits, the 8 strongest) that did
not come fire one step *before* the context's spikes: an anti-causal pairing (LTD) on
W[active pre, recalled] - a false recall is unlearnt when it costs surprise. With
`sampled_posts` k > 0 the output neurons also fire stochastically: k tokens drawn from the
position's prediction softmax(l) (backbone + adapters, the adapter's seeded RNG) fire with
the recalled ones, so in expectation the pairing is onehot(x) - p, the cross-entropy gradient
of a linear readout (Florian 2007's stochastic neurons). The draws are recorded as post
spikes in traces and the RNG is saved and snapshotted, so replay, save/load and /undo stay
exact. The next token's pre spikes also meet x's post trace (LTD, as STDP does). With
fast traces (tau 2 steps, the defaults for this kind) a token's spikes pair with its
neighbours only, and with a short eligibility (tau 1 step; the token's window is T + 2 = 6
steps) a token's surprise reward credits its own pairing, hardly those of the tokens before
it: with tau 10 the same reward also reinforced the previous tokens' pairings, and the
adapter gained a third as much on held-out streams (docs/log/2026-11-23-readout.md).

Fading (`memory_tau` tokens; 0, off, by default: the gated cache mix bounds the damage):
every FADE_EVERY learnt tokens of the adapter (its saved counter),
W <- W exp(-FADE_EVERY / memory_tau). The memory then holds the
recent text: what was read long ago stops interfering with other text ("forgetting" in
`plastic bench adapt`), at some cost to adaptation on long homogeneous streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plastic.models.sites import SiteInfo
from plastic.models.tokenizer import BOS
from plastic.plasticity.config import AdapterConfig
from plastic.plasticity.context_gate import VARIANCE_FLOOR, ContextGate
from plastic.plasticity.kernels import (
    doubt,
    mix_cache,
    pack_spikes,
    purity,
    sample_tokens,
    score_positions,
    sharpen,
    strongest,
    sum_rows,
)
from plastic.plasticity.synapses import EXACT_WEIGHT_RULES, PlasticSynapses


@dataclass(frozen=True)
class SiteCounts:
    """A site's spikes over a text, as `score_rows` reads them: per position the spikes of
    each neuron over the T timesteps (counts [N, n] float32), their sum (totals [N]), and the
    neurons that fired (active[offsets[s]:offsets[s + 1]], int64); active_rows: every neuron
    that fired anywhere (the weight rows the text reads)."""

    counts: np.ndarray
    totals: np.ndarray
    offsets: np.ndarray
    active: np.ndarray
    active_rows: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> SiteCounts:
        counts = np.ascontiguousarray(counts, np.float32)
        fired = counts > 0
        offsets = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(fired.sum(axis=1), out=offsets[1:])
        active = np.nonzero(fired)[1].astype(np.int64)
        rows = np.flatnonzero(fired.any(axis=0)).astype(np.int64)
        return cls(counts, counts.sum(axis=1, dtype=np.float32), offsets, active, rows)


@dataclass(frozen=True)
class BitsRequest:
    """What `score_rows` needs to give bits instead of logits, for rows that hold the
    frozen backbone's logits: the targets [N] (int64), the rows' softmax normalisers
    (norm_m, norm_z [N], as `softmax_normaliser`), their bits (frozen_bits [N]), `out`
    [N] (float64) for the result, and `cache`: a dict that lives as long as the prepared
    pass, where a layer keeps what it derives from the frozen rows once (keys: its own)."""

    targets: np.ndarray
    norm_m: np.ndarray
    norm_z: np.ndarray
    frozen_bits: np.ndarray
    out: np.ndarray
    cache: dict[str, Any] = field(default_factory=dict)


_EMPTY_F = np.zeros(0, np.float64)
_NO_BITS = BitsRequest(np.zeros(0, np.int64), _EMPTY_F, _EMPTY_F, _EMPTY_F, _EMPTY_F)

MAX_RECALLED = 8  # recalled tokens depressed per transition (the strongest ones)
FADE_EVERY = 16  # learnt tokens between two applications of the memory's fading


class ReadoutLayer:
    """A readout adapter at one site; see the module docstring."""

    kind = "readout"
    feeds_backbone = False  # only adds to the logits: a cached backbone pass replays it
    learns_while_generating = True  # its rule steps on the reply's transitions too

    def __init__(self, site: SiteInfo, vocab_size: int, config: AdapterConfig) -> None:
        self.site = site
        self.n_pre, self.n_post = site.size, vocab_size
        self.timesteps = site.timesteps
        self.gain = config.effective_scale
        self.sharpness = float(config.sharpness)
        self.gate_power = float(config.gate_power)
        self.cache_mix = float(config.cache_mix)
        # exponent of the memory's confidence in the mix weight (0: not gated)
        self.confidence_power = float(config.confidence_power) if config.cache_mix_gated else 0.0
        self.mix_doubt_power = float(config.mix_doubt_power)  # exponent of the backbone's doubt
        self.mix_purity_power = float(config.mix_purity_power)  # exponent of the recall's purity
        self.synapses = PlasticSynapses(
            config.rule,
            config.effective_rule_params(),
            np.zeros((self.n_pre, self.n_post), np.float32),
            backend=config.backend,
        )
        self.recall_threshold = np.float32(config.recall_threshold)
        # recall only in text like the learnt text (context_tau 0: everywhere)
        self.context = ContextGate(
            self.n_pre,
            float(config.context_tau),
            float(config.context_signature_tau),
            float(config.context_tolerance),
        )
        # fading: W <- W * exp(-FADE_EVERY / memory_tau) every FADE_EVERY learnt tokens
        tau = float(config.memory_tau)
        self.fade = np.float32(np.exp(-FADE_EVERY / tau)) if tau > 0 else None
        self.exact_weights = config.rule in EXACT_WEIGHT_RULES
        t = self.timesteps
        # preallocated per-token buffers (no per-token allocation of arrays); the rule runs
        # over T + 2 steps: recalled tokens, the token's spikes (T steps), the next token
        self.pre = np.zeros((t + 2, self.n_pre), np.uint8)  # rows 0 and t + 1 stay 0
        self.post = np.zeros((t + 2, self.n_post), np.uint8)  # rows 0 and t + 1 set per call
        self.recalled = np.zeros(MAX_RECALLED, np.int64)
        self.n_recalled = 0
        self.sampled = np.zeros(int(config.sampled_posts), np.int64)
        self.n_sampled = 0
        self.counts = np.zeros(self.n_pre, np.float32)
        self.active = np.zeros(self.n_pre, np.int64)
        self.delta = np.zeros(self.n_post, np.float32)
        self._no_raster = np.zeros((0, self.n_pre), np.uint8)
        self.spikes: np.ndarray | None = None  # [T, B, S, n_pre] of the current forward
        self.ready = False  # `pre` holds the spikes of the stream's latest token
        self.tokens = 0  # live tokens seen (for the mean rate)
        self.pre_spikes = 0.0

    @property
    def weights(self) -> np.ndarray:
        return self.synapses.weights

    # -- forward ----------------------------------------------------------------------
    def record(self, spikes: np.ndarray) -> None:
        """Keep the site's spikes [T, B, S, n_pre] of this forward pass (a view)."""
        self.spikes = spikes

    def contribute(
        self, b: int, s: int, logits_row: np.ndarray, live: bool, token: int = -1
    ) -> None:
        """Add this adapter's delta to `logits_row` [V] for position (b, s) of the forward,
        which reads `token` (-1: unknown; <bos> restarts the text's context).

        `live` positions belong to the conversation: their spikes are kept (for learning
        from the next token) and counted in the rates; others (scoring) leave no trace
        but in the context of the scored text.
        """
        assert self.spikes is not None
        spikes = self.spikes[:, b, s, :]
        raster = self.pre[1 : self.timesteps + 1] if live else self._no_raster
        n_active, total = pack_spikes(spikes, raster, self.counts, self.active)
        context = self.context.context(b, live) if self.context.enabled else None
        if context is not None:
            if token == BOS:
                self.context.restart(context)
            self.context.read(context, self.counts, self.timesteps)
        if live:
            self.ready = True
            self.tokens += 1
            self.pre_spikes += total
            self.n_recalled = 0
        if n_active == 0:
            return
        self.synapses.prepare_rows(self.active[:n_active])
        sum_rows(self.weights, self.active, n_active, self.counts, 1.0 / total, self.delta)
        lam = self.cache_mix
        if lam > 0 and self.mix_purity_power > 0:  # a context many tokens follow: quieter
            lam *= purity(self.delta) ** self.mix_purity_power
        gain = self.gain
        if self.gate_power > 0:  # speak where the backbone is unsure: x (1 - max p)^q
            gain *= doubt(logits_row) ** self.gate_power
        sharpen(self.delta, self.sharpness, gain)
        gate = self.context.gate(context) if context is not None else 1.0
        if self.cache_mix > 0:  # interpolate probabilities (neural cache), not logits
            if gate > 0 and np.any(self.delta):
                mix_cache(
                    logits_row,
                    self.delta,
                    lam * gate,
                    self.confidence_power,
                    self.mix_doubt_power,
                )
        elif gate == 1.0:
            logits_row += self.delta
        elif gate > 0:
            logits_row += np.float32(gate) * self.delta
        if live and self.recall_threshold > 0:
            self.n_recalled = strongest(self.delta, self.recall_threshold, self.recalled)

    def score_rows(
        self,
        logits: np.ndarray,
        tokens: np.ndarray,
        counts: SiteCounts,
        bits: BitsRequest | None = None,
    ) -> None:
        """`contribute` for every row of `logits` [N, V] (in place) of a text this layer only
        reads (scoring: nothing learns, the conversation is untouched), in one kernel call:
        the same result as contributing position by position, for a fraction of the cost.
        `counts`: the site's spike counts of that text (see `SiteCounts`). With `bits`, the
        logits stay as they are and `bits.out` gets each position's bits of its target
        under the adapted row (see `BitsRequest`)."""
        self.synapses.prepare_rows(counts.active_rows)
        context = self.context
        request = bits if bits is not None else _NO_BITS
        score_positions(
            logits,
            tokens,
            BOS,
            counts.counts,
            counts.totals,
            counts.offsets,
            counts.active,
            self.weights,
            self.gain,
            self.sharpness,
            self.gate_power,
            self.cache_mix,
            self.mix_purity_power,
            self.confidence_power,
            self.mix_doubt_power,
            context.enabled,
            context.step,
            float(self.timesteps),
            context.signature.rates,
            context.signature.weight,
            context.tolerance,
            VARIANCE_FLOOR,
            np.zeros(self.n_pre, np.float64),
            self.delta,
            request.out,
            request.targets,
            request.norm_m,
            request.norm_z,
            request.frozen_bits,
            np.zeros(self.n_post, np.float32),
        )

    def release(self) -> None:
        """Drop the reference to the forward's spikes."""
        self.spikes = None

    # -- learning ---------------------------------------------------------------------
    def draw_posts(self, prev_logits: np.ndarray, rng: np.random.Generator) -> None:
        """Stochastic output spikes (`sampled_posts` k > 0): draw k tokens from
        softmax(prev_logits), the prediction the latest position made (backbone + adapters);
        `learn_transition` makes those other than the observed token fire before the
        context (LTD). Draws nothing when there is no position to learn from."""
        self.n_sampled = 0
        if not self.ready or self.sampled.shape[0] == 0:
            return
        uniforms = rng.random(self.sampled.shape[0])
        self.n_sampled = sample_tokens(prev_logits, uniforms, self.sampled)

    def learn_transition(self, token: int) -> None:
        """Step the rule over T + 2 steps: the tokens this memory recalled for the latest
        position and those drawn by `draw_posts` (except `token`) fire, then that
        position's spikes, then `token` fires."""
        if not self.ready:
            return
        last = self.timesteps + 1
        recalled = self.recalled[: self.n_recalled]
        sampled = self.sampled[: self.n_sampled]
        self.post[0, recalled] = 1
        self.post[0, sampled] = 1
        self.post[0, token] = 0
        self.post[last, token] = 1
        try:
            self.synapses.step(self.pre, self.post)
            self.context.learn(self.pre[1 : self.timesteps + 1])
        finally:
            self.post[0, recalled] = 0
            self.post[0, sampled] = 0
            self.post[last, token] = 0
            self.n_sampled = 0

    def fade_memory(self) -> None:
        """W <- W exp(-FADE_EVERY / memory_tau): the model calls it every FADE_EVERY learnt
        tokens of the adapter (its saved counter, so a loaded or undone adapter fades on
        the same tokens). Weights stay within the bounds."""
        if self.fade is None:
            return
        if not self.exact_weights:
            self.synapses.sync()  # apply deferred work before scaling
        self.synapses.scale(self.fade)

    def reward(self, value: float) -> None:
        self.synapses.reward(value)

    def forget_context(self) -> None:
        """A stream boundary (reset, <bos>): the next token has no predecessor to pair with,
        and the conversation's text context starts again."""
        self.ready = False
        self.context.restart(self.context.live)

    # -- figures ----------------------------------------------------------------------
    def rates(self) -> dict[str, float]:
        denom = max(self.tokens, 1) * self.timesteps
        return {"pre_rate": self.pre_spikes / (denom * self.n_pre)}

    def reset_counters(self) -> None:
        self.tokens, self.pre_spikes = 0, 0.0
