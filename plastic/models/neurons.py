"""LIF populations simulated over a token's timesteps, built on snnTorch's `Leaky` neuron."""

from __future__ import annotations

import snntorch as snn
import torch
from snntorch import surrogate as sg
from torch import nn

from plastic.errors import ConfigError


def make_surrogate(name: str, scale: float):
    """Return snnTorch's spike function with the named surrogate gradient.

    `scale` is atan's alpha or the slope of fast_sigmoid / sigmoid; triangular ignores it.
    """
    if name == "atan":
        return sg.atan(alpha=scale)
    if name == "fast_sigmoid":
        return sg.fast_sigmoid(slope=scale)
    if name == "sigmoid":
        return sg.sigmoid(slope=scale)
    if name == "triangular":
        return sg.triangular()
    raise ConfigError(f"unknown surrogate gradient {name!r}")


class LIFPopulation(nn.Module):
    """`size` leaky integrate-and-fire neurons run for `t_fast + t_slow` steps per token.

    Membrane (reset by subtraction, snnTorch convention):
        U[t] = beta * U[t-1] + I * on[t] - S[t-1] * threshold,   S[t] = H(U[t] - threshold)
    with `on[t] = 1` for the first `t_fast` steps and 0 after. The membrane starts at
    zero for every token: information flows between tokens only through the
    token-mixing path, which keeps training parallel over the sequence.
    `beta` is learned per neuron.
    """

    def __init__(
        self,
        size: int,
        *,
        t_fast: int,
        t_slow: int,
        beta_init: float,
        threshold: float,
        surrogate: str,
        surrogate_scale: float,
    ) -> None:
        super().__init__()
        self.size, self.t_fast, self.t_slow = size, t_fast, t_slow
        self.lif = snn.Leaky(
            beta=torch.full((size,), float(beta_init)),
            threshold=threshold,
            spike_grad=make_surrogate(surrogate, surrogate_scale),
            learn_beta=True,
            reset_mechanism="subtract",
        )

    @property
    def timesteps(self) -> int:
        return self.t_fast + self.t_slow

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """Simulate one token per position of `current` [..., size]; spikes [T, ..., size]."""
        mem = torch.zeros_like(current)
        zero = torch.zeros_like(current)
        spikes = []
        for t in range(self.timesteps):
            spk, mem = self.lif(current if t < self.t_fast else zero, mem)
            spikes.append(spk)
        return torch.stack(spikes)
