"""Token mixing with a constant cost per token: multi-scale decayed retention.

For head h with decay g_h in (0, 1), queries q, keys k and values v (all linear
read-outs of a spiking population), the output at position t is

    y_t = sum_{j <= t} g_h^(t-j) (q_t . k_j) v_j

which equals the recurrence  S_t = g_h S_{t-1} + k_t^T v_t,  y_t = q_t S_t
(Sun et al. 2023, "Retentive Network"). Training uses the parallel form; generation
carries S, a [heads, d_k, d_v] matrix per layer, so each new token costs the same
however long the conversation is. Both paths are one function: `retention`.
"""

from __future__ import annotations

import torch


def retention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    state: torch.Tensor | None,
    chunk: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decayed linear attention over a chunked sequence, carrying the recurrent state.

    q, k, v: [B, H, S, d]; log_decay: [H] (log g_h < 0); state: [B, H, d, d] or None.
    Returns (y [B, H, S, d], new state [B, H, d, d]).
    """
    b, h, s, d = q.shape
    if state is None:
        state = q.new_zeros(b, h, d, v.shape[-1])
    ys = []
    for start in range(0, s, chunk):
        qc, kc, vc = (x[:, :, start : start + chunk] for x in (q, k, v))
        c = qc.shape[2]
        pos = torch.arange(c, device=q.device, dtype=q.dtype)
        ld = log_decay.view(h, 1, 1)
        diff = pos.view(c, 1) - pos.view(1, c)  # t - j
        mask = diff >= 0
        decay = torch.where(mask, torch.exp(ld * diff.clamp(min=0)), torch.zeros((), dtype=q.dtype))
        inner = (qc @ kc.transpose(-1, -2)) * decay  # [B, H, C, C]
        y = inner @ vc
        # contribution of the carried state: g^(t+1) q_t S
        y = y + (qc * torch.exp(ld * (pos + 1).view(1, c, 1))) @ state
        ys.append(y)
        # S <- g^C S + sum_j g^(C-1-j) k_j^T v_j
        kw = kc * torch.exp(ld * (c - 1 - pos).view(1, c, 1))
        state = torch.exp(log_decay * c).view(1, h, 1, 1) * state + kw.transpose(-1, -2) @ vc
    return torch.cat(ys, dim=2), state
