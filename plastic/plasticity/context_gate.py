"""The readout memory's context gate: recall only in text like the text it learnt from.

Context-dependent retrieval (Godden & Baddeley 1975, "Context-dependent memory in two
natural environments"; in networks, context-dependent gating, Masse et al. 2018, PNAS
115(44)): a memory learnt in one context is recalled in that context and kept quiet in
others, so what the readout learnt from one kind of text does not leak into another
(`forgetting` in `plastic bench adapt`).

The context is the site's own firing, the same spikes the memory is keyed on. Per neuron i:

    s_i   the mean firing rate over the tokens the memory learnt from, a bias-corrected
          running mean over the last ~`signature_tau` learnt tokens (the signature: learnt
          state, saved with the adapter, in its snapshots and in traces; it changes only
          when the adapter learns);
    z_i   the mean firing rate over the text being read, a running mean over the last
          ~`tau` tokens (the context: like the backbone's recurrent state it belongs to the
          text being read, restarts at <bos> from the signature, and a scored text has its
          own, so scoring never disturbs the conversation's);
    D     = mean_i (z_i - s_i)^2 / max(s_i (1 - s_i), 1e-3)   (a per-neuron chi-square
          distance, so rarely firing neurons count as much as busy ones);
    g     = clip((2 D0 - D) / D0, 0, 1),  D0 = `tolerance`: 1 up to D0, 0 beyond 2 D0.

The readout multiplies its mix weight (or, when it adds, its gain) by g. The context of a
new text starts at the signature, so a short text (a probe, a question about what was just
taught) is read with the memory on, and the gate closes only as the text shows itself to
be different, within ~`tau` tokens. Measured on held-out text (docs/log/2026-11-23-readout.md, fifth
round), the defaults cost no adaptation on the streams and remove the memory's damage to
Gutenberg text read afterwards. What it cannot do: tell apart texts that read alike (an
unrelated sentence of the same chat); there only the mix's own bounds protect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plastic.kernels_numba.adapter_kernels import chi_distance, running_mean

VARIANCE_FLOOR = 1e-3  # the floor of s_i (1 - s_i) in D: a silent neuron is not infinitely telling


@dataclass
class RateContext:
    """A running mean of a site's firing rates over a text (preallocated, updated in place)."""

    rates: np.ndarray  # [n] float64
    weight: float = 0.0  # 1 - (1 - a)^k: 0 when empty; bias correction of the running mean

    def clear(self) -> None:
        self.rates[:] = 0.0
        self.weight = 0.0


class ContextGate:
    """A readout layer's signature of learnt text and the contexts of the texts it reads."""

    def __init__(self, n: int, tau: float, signature_tau: float, tolerance: float) -> None:
        self.n = n
        self.enabled = tau > 0
        self.step = 1.0 / tau if tau > 0 else 0.0
        self.signature_step = 1.0 / signature_tau
        self.tolerance = float(tolerance)
        self.signature = RateContext(np.zeros(n, np.float64))
        self.live = RateContext(np.zeros(n, np.float64))
        self.scored: list[RateContext] = []  # one per batch row of a scoring pass
        self._rate = np.zeros(n, np.float64)

    # -- learnt state ---------------------------------------------------------------------
    def learn(self, raster: np.ndarray) -> None:
        """Add a learnt token's spikes (raster [T, n], 0/1) to the signature."""
        if not self.enabled:
            return
        steps = raster.shape[0]
        np.sum(raster, axis=0, dtype=np.float64, out=self._rate)
        self.signature.weight = running_mean(
            self.signature.rates,
            self.signature.weight,
            self.signature_step,
            self._rate,
            1.0 / steps,
        )

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The signature as arrays (saved with the adapter, kept in its snapshots)."""
        return {
            "signature": self.signature.rates.copy(),
            "signature_weight": np.array([self.signature.weight], np.float64),
        }

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore `state_arrays()`; raises ValueError on a wrong shape or range."""
        rates = np.asarray(arrays["signature"], np.float64)
        weight = np.asarray(arrays["signature_weight"], np.float64)
        if rates.shape != (self.n,) or weight.shape != (1,):
            raise ValueError(
                f"context signature has shape {list(rates.shape)} and weight shape "
                f"{list(weight.shape)}, this layer needs [{self.n}] and [1]"
            )
        if not (np.all((rates >= 0) & (rates <= 1)) and 0.0 <= weight[0] <= 1.0):
            raise ValueError("context signature rates and weight must lie in [0, 1]")
        self.signature.rates[:] = rates
        self.signature.weight = float(weight[0])

    def reset(self) -> None:
        """Forget the signature (a reset adapter has learnt nothing) and every context."""
        self.signature.clear()
        self.restart(self.live)
        self.scored.clear()

    # -- the text being read --------------------------------------------------------------
    def context(self, b: int, live: bool) -> RateContext:
        """The context of the conversation (live) or of row b of a scoring pass."""
        if live:
            return self.live
        while len(self.scored) <= b:
            self.scored.append(RateContext(np.zeros(self.n, np.float64)))
            self.restart(self.scored[-1])
        return self.scored[b]

    def restart(self, context: RateContext) -> None:
        """A new text begins: its context starts at the signature (the memory stays on
        until the text shows itself different); empty if nothing was learnt yet."""
        context.rates[:] = self.signature.rates
        context.weight = 1.0 if self.signature.weight > 0 else 0.0

    def read(self, context: RateContext, counts: np.ndarray, steps: int) -> None:
        """Add one position's spike counts [n] (over `steps` timesteps) to `context`."""
        context.weight = running_mean(context.rates, context.weight, self.step, counts, 1.0 / steps)

    def distance(self, context: RateContext) -> float:
        """D: the chi-square distance of the context from the signature."""
        return chi_distance(context.rates, self.signature.rates, VARIANCE_FLOOR)

    def gate(self, context: RateContext) -> float:
        """g in [0, 1]: 1 while D <= tolerance, 0 from 2 x tolerance on."""
        if not self.enabled:
            return 1.0
        if self.signature.weight == 0.0:
            return 1.0  # nothing learnt here (weights set by hand): no context to compare
        excess = (2.0 * self.tolerance - self.distance(context)) / self.tolerance
        return min(1.0, max(0.0, excess))
