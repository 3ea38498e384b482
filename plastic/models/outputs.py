"""What a forward pass of the backbone carries between calls (`LMState`) and returns
(`LMOutput`), in a module of their own so that the fused path and the model share them."""

from __future__ import annotations

from typing import NamedTuple

import torch


class LMState(NamedTuple):
    """Recurrent state carried between calls: one retention matrix per block."""

    mix: tuple[torch.Tensor, ...]  # each [B, heads, d_k, d_k]


class LMOutput(NamedTuple):
    logits: torch.Tensor  # [B, S, vocab]
    state: LMState
    rates: dict[str, torch.Tensor]  # site name -> mean spike rate (scalar tensor, differentiable)
