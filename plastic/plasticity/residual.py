"""The residual adapter (experimental): a plastic LIF population written back into the stream.

Neurons: the site's population (pre, n_pre = site.size) and `size` LIF neurons of the
adapter (post). Per token, over the token's T timesteps (the backbone's LIF equations,
reset by subtraction, membrane starting at 0 every token):

    I[t] = sum of W[i, :] over the pre neurons i spiking at t       (event-driven)
    U[t] = beta U[t-1] + I[t] - S[t-1] theta,      S[t] = H(U[t] - theta)
    delta_residual = scale * sum_j c_j W_out[j, :]  (c_j: spikes of post neuron j over T)

W [n_pre, size] is plastic (seeded small random init); W_out [size, write_dim] is a fixed
seeded random projection (std 1/sqrt(size)) and never learns. `scale` keeps the output
tiny at init, so attaching barely changes predictions. The rule steps on the pre and post
spikes of every token as they happen (in the site hook); rewards arrive at the next
token's boundary. The readout adapter is the default: this kind is experimental (it
changes the backbone's internal activity, so it needs token-by-token learning and a
careful drift guard).
"""

from __future__ import annotations

import math

import numpy as np

from plastic.models.sites import SiteInfo
from plastic.plasticity.config import AdapterConfig
from plastic.plasticity.kernels import lif_population, pack_spikes, sum_rows
from plastic.plasticity.synapses import PlasticSynapses

ASSUMED_PRE_RATE = 0.1  # firing rate assumed by the automatic init_std


class ResidualLayer:
    """A residual adapter at one site; see the module docstring."""

    kind = "residual"
    feeds_backbone = True  # its output enters the backbone at its site
    learns_while_generating = True  # its rule steps on the reply's transitions too

    def __init__(self, site: SiteInfo, config: AdapterConfig, rng: np.random.Generator) -> None:
        self.site = site
        self.n_pre, self.n_post, self.write_dim = site.size, int(config.size), site.write_dim
        self.timesteps = site.timesteps
        self.scale = config.effective_scale
        self.beta = np.float32(config.beta)
        self.threshold = np.float32(config.threshold)
        std = config.init_std
        if std is None:
            std = 1.5 * config.threshold / math.sqrt(max(ASSUMED_PRE_RATE * self.n_pre, 1.0))
        init = rng.normal(0.0, std, (self.n_pre, self.n_post)).astype(np.float32)
        self.synapses = PlasticSynapses(
            config.rule, config.effective_rule_params(), init, backend=config.backend
        )
        projection = rng.normal(0.0, 1.0 / math.sqrt(self.n_post), (self.n_post, self.write_dim))
        self.projection = projection.astype(np.float32)  # W_out, fixed
        t = self.timesteps
        self.pre = np.zeros((t, self.n_pre), np.uint8)
        self.post = np.zeros((t, self.n_post), np.uint8)
        self.pre_counts = np.zeros(self.n_pre, np.float32)
        self.pre_active = np.zeros(self.n_pre, np.int64)
        self.post_counts = np.zeros(self.n_post, np.float32)
        self.post_active = np.zeros(self.n_post, np.int64)
        self.mem = np.zeros(self.n_post, np.float32)
        self.current = np.zeros(self.n_post, np.float32)
        self.out_one = np.zeros((1, 1, self.write_dim), np.float32)  # the per-token output
        self.tokens = 0
        self.pre_spikes = 0.0
        self.post_spikes = 0.0

    @property
    def weights(self) -> np.ndarray:
        return self.synapses.weights

    def forward(self, spikes: np.ndarray, live: bool, learn: bool) -> np.ndarray:
        """The write-back [B, S, write_dim] for site spikes [T, B, S, n_pre].

        With `learn`, the rule steps on each position's pre and post spikes in order.
        The returned array is reused by the next call (the site adds a copy of it).
        """
        _, batch, seq, _ = spikes.shape
        out = (
            self.out_one
            if batch == seq == 1
            else np.empty((batch, seq, self.write_dim), np.float32)
        )
        for b in range(batch):
            for s in range(seq):
                n_pre, pre_total = pack_spikes(
                    spikes[:, b, s, :], self.pre, self.pre_counts, self.pre_active
                )
                if n_pre:
                    self.synapses.prepare_rows(self.pre_active[:n_pre])
                n_post = lif_population(
                    self.pre, self.weights, self.beta, self.threshold, self.mem, self.current,
                    self.post, self.post_counts, self.post_active,
                )  # fmt: skip
                sum_rows(
                    self.projection,
                    self.post_active,
                    n_post,
                    self.post_counts,
                    self.scale,
                    out[b, s],
                )
                if live:
                    self.tokens += 1
                    self.pre_spikes += pre_total
                    self.post_spikes += float(self.post_counts.sum())
                if learn:
                    self.synapses.step(self.pre, self.post)
        return out

    # the per-token protocol shared with ReadoutLayer
    def learn_transition(self, token: int) -> None:
        """Nothing to do: this layer's rule steps in the forward pass (`forward`)."""

    def reward(self, value: float) -> None:
        self.synapses.reward(value)

    def forget_context(self) -> None:
        """Nothing carries over between tokens except the rule's traces."""

    def rates(self) -> dict[str, float]:
        denom = max(self.tokens, 1) * self.timesteps
        return {
            "pre_rate": self.pre_spikes / (denom * self.n_pre),
            "post_rate": self.post_spikes / (denom * self.n_post),
        }

    def reset_counters(self) -> None:
        self.tokens, self.pre_spikes, self.post_spikes = 0, 0.0, 0.0
