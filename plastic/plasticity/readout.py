"""The readout adapter kind: a Hebbian, cache-like memory from a site's spikes onto the logits.

Neurons: the site's population (pre, n_pre = site.size; by default the `readout` site, i.e.
the last block's feed-forward spikes) and one output neuron per token id (post, V).
W[n_pre, V] starts at 0, so attaching changes nothing until something is learnt.

Contribution to the logits of a position whose pre neurons spiked c_i times over the
token's T timesteps (event-driven: only the rows of neurons that fired are read):

    m_j          = sum_i c_i W[i, j] / sum_i c_i          (the spike-weighted mean row)
    delta_logits = g * sign(m_j) |m_j|^p                  (p = `sharpness`, g = `scale`)

so |delta_logits| <= g * max(|w_min|, |w_max|)^p whatever the firing rate, and the power p
makes the memory recall only for contexts whose spikes match a stored one closely: a
context sharing a third of its active neurons with a stored one gets 1/27 of its recall.

With `cache_mix` l > 0 the delta is not added: it is the memory's score, and the position's
distribution becomes the neural cache's interpolation (Grave et al. 2017)

    p = (1 - l') softmax(logits) + l' softmax(delta_logits),
    l' = l * c^q * d^r,   c = max softmax(delta_logits),   d = 1 - max softmax(logits)

with q = `confidence_power` and r = `mix_doubt_power` (0: no d), so no byte loses more than
-log2(1 - l') bits to the memory, whatever it holds: the damage on unrelated text is bounded,
and gated by the memory's confidence c it is small. The backbone's doubt d keeps the memory
out where the backbone is already sure.

The context gate (`context_gate`; `context_tau` > 0) multiplies l' (or, when the delta is
added, the gain) by g in [0, 1]: 1 while the firing rates of the text being read stay close
to those of the text the memory learnt from, 0 once they are clearly not. It cannot tell
apart texts that read alike (a taught fact and an unrelated sentence of the same chat).

Learning, once the next token x is known (observed, or chosen by the sampler), before the
forward pass of x: the rule runs over T + 2 timesteps with

    pre  = [0; spikes of the current token (T steps); 0]
    post = [onehot(recalled tokens other than x); 0 ... 0; onehot(x)]

x's output neuron fires one step after the context's spikes: a causal pre -> post pairing
(LTP, or eligibility for three-factor rules) on W[active pre, x]. The tokens this memory
recalled for the context (delta >= `recall_threshold` logits, the 8 strongest) that did
not come fire one step *before* the context's spikes: an anti-causal pairing (LTD) on
W[active pre, recalled], so a false recall is unlearnt when it costs surprise. With fast
traces (tau 2 steps, this kind's defaults) a token's spikes pair with its neighbours only,
and with a short eligibility (tau 1 step) a token's surprise credits its own pairing.
How the defaults were chosen: docs/log/2026-11-23-readout.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plastic.errors import ConfigError
from plastic.kernels_numba.adapter_kernels import (
    mix_cache,
    pack_spikes,
    score_positions,
    sharpen,
    strongest,
    sum_rows,
)
from plastic.models.sites import SiteInfo
from plastic.models.tokenizer import BOS
from plastic.plasticity.config import AdapterConfig
from plastic.plasticity.context_gate import VARIANCE_FLOOR, ContextGate
from plastic.plasticity.device_synapses import make_synapses
from plastic.plasticity.kinds import KindSettings, KindSpec, finite


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

# Rule parameters of this kind (fast traces pair a token's spikes with the next token only;
# equal LTP/LTD keeps recalls that miss in check); see docs/log/2026-11-23-readout.md.
RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "rstdp": {
        "tau_pre": 2.0,
        "tau_post": 2.0,
        "a_plus": 1.0,
        "a_minus": 1.0,
        "tau_eligibility": 1.0,
        "learning_rate": 0.1,
        "baseline_tau": 0.0,  # the reward sources bring their own baselines
        "w_min": -1.0,
        "w_max": 1.0,
        "max_update_norm": 2.0,
    },
    "stdp": {"tau_pre": 2.0, "tau_post": 2.0, "a_plus": 0.05, "a_minus": 0.025},
    "hebb": {"tau_rate": 3.0, "learning_rate": 0.01, "update_interval": 3},
}


@dataclass(frozen=True)
class ReadoutConfig(KindSettings):
    """The readout kind's own settings (`AdapterConfig.kind_params`); see the module
    docstring for the equations and docs/log/2026-11-23-readout.md for how they were chosen."""

    kind_name = "readout"

    scale: float = 14.0  # g: gain in logits per unit of sharpened weight
    sharpness: float = 3.0  # p of the match, g * sign(m) |m|^p
    recall_threshold: float = 0.5  # recalls >= this (logits) that miss are depressed
    cache_mix: float = 0.4  # l of the neural-cache mix (0: the delta is added instead)
    confidence_power: float = 2.5  # q: l x max softmax(delta)^q
    mix_doubt_power: float = 0.5  # r: l x (1 - max p_backbone)^r (0: off)
    context_tau: float = 1000.0  # tokens of the read text's context (0: no context gate)
    context_signature_tau: float = 2000.0  # learnt tokens the signature averages over
    context_tolerance: float = 0.002  # gate 1 up to this distance D, 0 from twice it

    def __post_init__(self) -> None:
        if not (finite(self.scale) and self.scale >= 0):
            raise ConfigError(f"scale must be a finite number >= 0, got {self.scale!r}")
        if not (finite(self.sharpness) and 1.0 <= self.sharpness <= 8.0):
            raise ConfigError(f"sharpness must lie in [1, 8], got {self.sharpness!r}")
        if not (finite(self.recall_threshold) and self.recall_threshold >= 0):
            raise ConfigError(f"recall_threshold must be >= 0, got {self.recall_threshold!r}")
        if not (finite(self.cache_mix) and 0.0 <= self.cache_mix < 1.0):
            raise ConfigError(f"cache_mix must lie in [0, 1), got {self.cache_mix!r}")
        _check_exponent("confidence_power", self.confidence_power, zero_allowed=False)
        _check_exponent("mix_doubt_power", self.mix_doubt_power, zero_allowed=True)
        tau, signature_tau = self.context_tau, self.context_signature_tau
        if not (finite(tau) and (tau == 0 or tau >= 1)):
            raise ConfigError(f"context_tau must be 0 (no gate) or >= 1 token, got {tau!r}")
        if not (finite(signature_tau) and signature_tau >= 1):
            raise ConfigError(f"context_signature_tau must be >= 1 token, got {signature_tau!r}")
        if not (finite(self.context_tolerance) and self.context_tolerance > 0):
            raise ConfigError(f"context_tolerance must be > 0, got {self.context_tolerance!r}")


def _check_exponent(name: str, value: Any, *, zero_allowed: bool) -> None:
    """Raise ConfigError unless `value` is a finite number in [0, 8] ((0, 8] without zero)."""
    if not (finite(value) and (value >= 0 if zero_allowed else value > 0) and value <= 8):
        interval = "[0, 8]" if zero_allowed else "(0, 8]"
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}")


class ReadoutLayer:
    """A readout adapter at one site; see the module docstring."""

    kind = "readout"  # what traces record about the site

    feeds_backbone = False  # only adds to the logits: a cached backbone pass replays it
    reads_chunks = False  # contributes position by position
    learns_while_generating = True  # its rule steps on the reply's transitions too
    trace_form = "synapses"  # recorded as weights and rasters

    def __init__(self, site: SiteInfo, vocab_size: int, config: AdapterConfig) -> None:
        settings: ReadoutConfig = config.settings
        self.site = site
        self.n_pre, self.n_post = site.size, vocab_size
        self.timesteps = site.timesteps
        self.gain = float(settings.scale)
        self.sharpness = float(settings.sharpness)
        self.cache_mix = float(settings.cache_mix)
        self.confidence_power = float(settings.confidence_power)  # of the memory's confidence
        self.mix_doubt_power = float(settings.mix_doubt_power)  # of the backbone's doubt
        self.synapses = make_synapses(
            config.rule,
            config.effective_rule_params(),
            np.zeros((self.n_pre, self.n_post), np.float32),
            backend=config.backend,
        )
        self.recall_threshold = np.float32(settings.recall_threshold)
        # recall only in text like the learnt text (context_tau 0: everywhere)
        self.context = ContextGate(
            self.n_pre,
            float(settings.context_tau),
            float(settings.context_signature_tau),
            float(settings.context_tolerance),
        )
        t = self.timesteps
        # preallocated per-token buffers (no per-token allocation of arrays); the rule runs
        # over T + 2 steps: recalled tokens, the token's spikes (T steps), the next token
        self.pre = np.zeros((t + 2, self.n_pre), np.uint8)  # rows 0 and t + 1 stay 0
        self.post = np.zeros((t + 2, self.n_post), np.uint8)  # rows 0 and t + 1 set per call
        self.recalled = np.zeros(MAX_RECALLED, np.int64)
        self.n_recalled = 0
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
        sharpen(self.delta, self.sharpness, self.gain)
        gate = self.context.gate(context) if context is not None else 1.0
        if self.cache_mix > 0:  # interpolate probabilities (neural cache), not logits
            if gate > 0 and np.any(self.delta):
                mix_cache(
                    logits_row,
                    self.delta,
                    self.cache_mix * gate,
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
            self.cache_mix,
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
    def learn_transition(self, token: int) -> None:
        """Step the rule over T + 2 steps: the tokens this memory recalled for the latest
        position (except `token`) fire, then that position's spikes, then `token` fires."""
        if not self.ready:
            return
        last = self.timesteps + 1
        recalled = self.recalled[: self.n_recalled]
        self.post[0, recalled] = 1
        self.post[0, token] = 0
        self.post[last, token] = 1
        try:
            self.synapses.step(self.pre, self.post)
            self.context.learn(self.pre[1 : self.timesteps + 1])
        finally:
            self.post[0, recalled] = 0
            self.post[last, token] = 0

    def reward(self, value: float) -> None:
        self.synapses.reward(value)

    def forget_context(self) -> None:
        """A stream boundary (reset, <bos>): the next token has no predecessor to pair with,
        and the conversation's text context starts again."""
        self.ready = False
        self.context.restart(self.context.live)

    def reset(self) -> None:
        """Initial weights, a fresh rule state and an empty context signature."""
        self.synapses.reset()
        self.context.reset()

    # -- state beside the synapses ------------------------------------------------------
    def extra_state(self) -> dict[str, np.ndarray]:
        """The context signature (saved and snapshotted; nothing without a context gate)."""
        if not self.context.enabled:
            return {}
        return {f"context.{k}": v for k, v in self.context.state_arrays().items()}

    def load_extra_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore `extra_state()` (ValueError on a wrong shape or range)."""
        if self.context.enabled:
            prefix = "context."
            self.context.load_state_arrays(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )

    # -- figures ----------------------------------------------------------------------
    def rates(self) -> dict[str, float]:
        denom = max(self.tokens, 1) * self.timesteps
        return {"pre_rate": self.pre_spikes / (denom * self.n_pre)}

    def reset_counters(self) -> None:
        self.tokens, self.pre_spikes = 0, 0.0


KIND = KindSpec(
    name="readout",
    summary="plastic synapses from a site's spikes onto one neuron per token id (the logits)",
    settings=ReadoutConfig,
    default_rule="rstdp",
    default_reward=("surprise", "feedback"),
    default_targets=("readout",),
    layer=lambda site, vocab_size, config, rng: ReadoutLayer(site, vocab_size, config),
    rule_defaults=RULE_DEFAULTS,
)
