"""Grow a trained backbone instead of training a larger one from scratch, keeping the function
it computes: every feed-forward population widened by whole copies of its neurons
(Net2WiderNet, Chen et al. 2016, "Net2Net: Accelerating Learning via Knowledge Transfer",
section 3.2), or the ceiling on its token-mixing decays raised (a longer possible memory).

Neuron j of a FFN population becomes `factor` neurons with j's input row of `w_up` and
j's `beta`, and j's column of `w_down` is split evenly among them. Copies fire the same
spikes, so every output is unchanged (up to the order of float sums). Identical copies
would get identical Adam updates and stay copies; `noise` > 0 gives each copy's input row
zero-mean noise of `noise` x the row's standard deviation, summing to zero over the copies.
"""

from __future__ import annotations

import dataclasses

import torch

from plastic.models.spiking_lm import SpikingLM


@torch.no_grad()
def widen_ffn(
    model: SpikingLM, factor: int, *, noise: float = 0.0, seed: int = 0, name: str | None = None
) -> SpikingLM:
    """A new model with `factor` x the FFN neurons of `model`, computing the same function."""
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got {factor}")
    cfg = model.config
    wide_cfg = dataclasses.replace(cfg, d_ff=cfg.d_ff * factor, name=name or cfg.name)
    wide = SpikingLM(wide_cfg)
    gen = torch.Generator().manual_seed(seed)
    state = dict(model.state_dict())
    for i, block in enumerate(model.blocks):
        prefix = f"blocks.{i}.ffn."
        w_up = block.ffn.w_up.weight  # [d_ff, d_model]
        eps = torch.randn((factor, *w_up.shape), generator=gen, dtype=w_up.dtype)
        eps = (eps - eps.mean(0)) * noise * w_up.std(dim=1, keepdim=True)
        # copies of neuron j sit next to each other: rows j*factor ... j*factor + factor-1
        state[prefix + "w_up.weight"] = (w_up + eps).transpose(0, 1).reshape(-1, w_up.shape[1])
        state[prefix + "lif.lif.beta"] = block.ffn.lif.lif.beta.repeat_interleave(factor)
        w_down = block.ffn.w_down.weight  # [d_model, d_ff]
        state[prefix + "w_down.weight"] = (w_down / factor).repeat_interleave(factor, dim=1)
    wide.load_state_dict(state)
    wide.train(model.training)
    return wide


@torch.no_grad()
def raise_decay_ceiling(model: SpikingLM, decay_max: float) -> SpikingLM:
    """A new model whose token-mixing decays may grow up to `decay_max`, computing the same
    function: each head's decay g_h = decay_max * sigmoid(logit_h) is kept by solving for
    the new logit. A head near the old ceiling sits where the sigmoid is flat: an Adam step
    of its logit (about lr, whatever the gradient) barely moves its decay, and the decay can
    never pass the ceiling, so only a higher ceiling lets training lengthen that memory."""
    cfg = model.config
    if not cfg.decay_max <= decay_max < 1.0:
        raise ValueError(f"decay_max must be in [{cfg.decay_max}, 1), got {decay_max}")
    grown = SpikingLM(dataclasses.replace(cfg, decay_max=decay_max))
    state = dict(model.state_dict())
    for i, block in enumerate(model.blocks):
        ratio = (torch.exp(block.mix.log_decay().double()) / decay_max).clamp(max=1 - 1e-12)
        key = f"blocks.{i}.mix.decay_logit"
        state[key] = torch.log(ratio / (1 - ratio)).to(state[key].dtype)
    grown.load_state_dict(state)
    grown.train(model.training)
    return grown
