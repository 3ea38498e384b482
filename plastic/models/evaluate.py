"""Bits per byte of a byte stream under a model, read in chunks with the state carried over."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from plastic.models.spiking_lm import SpikingLM
from plastic.models.tokenizer import BOS

LN2 = math.log(2.0)


@torch.no_grad()
def stream_bits(
    model: SpikingLM,
    data: bytes,
    *,
    chunk: int = 512,
    progress: Callable[[int], None] | None = None,
) -> tuple[float, dict[str, float]]:
    """Total bits to code `data` byte by byte after <bos>, and mean spike rate per site.

    Each byte is predicted from all bytes before it (the state is carried across
    chunks, so the result does not depend on `chunk`).
    """
    if not data:
        return 0.0, {}
    device = next(model.parameters()).device
    tokens = torch.tensor([BOS, *data], dtype=torch.long, device=device)
    state = None
    total = 0.0
    rate_sum: dict[str, float] = {}
    n_chunks = 0
    for start in range(0, len(data), chunk):
        tgt = tokens[start + 1 : start + 1 + chunk]
        inp = tokens[start : start + len(tgt)].unsqueeze(0)
        out = model(inp, state)
        state = out.state
        total += F.cross_entropy(out.logits[0].float(), tgt, reduction="sum").item() / LN2
        for k, v in out.rates.items():
            rate_sum[k] = rate_sum.get(k, 0.0) + float(v) * inp.shape[1]
        n_chunks += inp.shape[1]
        if progress:
            progress(len(tgt))
    return total, {k: v / n_chunks for k, v in rate_sum.items()}


def bits_per_byte(model: SpikingLM, data: bytes, **kw) -> float:
    """Mean bits per byte of `data` (see `stream_bits`)."""
    bits, _ = stream_bits(model, data, **kw)
    return bits / max(len(data), 1)
