"""The frozen spiking language model: embedding -> spike encoder -> L spiking blocks -> readout.

Per token, every LIF population is simulated for T = t_fast + t_slow timesteps.
The residual stream is the membrane of non-spiking integrators: each path adds the
synaptic current of its spikes, summed over the token's timesteps, to it. The
logits are read from that membrane (a 1-bit spike readout starves an LM).

Block i:
    mixing path  (site blocks.i.mix): LIF(d_model) <- W_in x; q, k, v, gate read the
                 spike counts; decayed retention across tokens; x += W_o(...)
    feed-forward (site blocks.i.ffn): LIF(d_ff) <- W_up x; x += W_down(spike counts)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from plastic.models.config import ModelConfig
from plastic.models.mixing import retention
from plastic.models.neurons import LIFPopulation
from plastic.models.outputs import LMOutput, LMState
from plastic.models.sites import SiteInfo, SiteRegistry


def _population(cfg: ModelConfig, size: int) -> LIFPopulation:
    return LIFPopulation(
        size,
        t_fast=cfg.t_fast,
        t_slow=cfg.t_slow,
        beta_init=cfg.beta_init,
        threshold=cfg.threshold,
        surrogate=cfg.surrogate,
        surrogate_scale=cfg.surrogate_scale,
    )


class SpikingMixer(nn.Module):
    """Token-mixing path: a LIF population whose spike counts feed multi-scale retention."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, h = cfg.d_model, cfg.n_heads
        self.n_heads, self.d_head = h, d // h
        self.norm = nn.RMSNorm(d)
        self.w_in = nn.Linear(d, d, bias=False)
        self.lif = _population(cfg, d)
        self.w_qkvg = nn.Linear(d, 4 * d, bias=False)
        self.out_norm = nn.RMSNorm(self.d_head)
        self.w_out = nn.Linear(d, d, bias=False)
        # decay g_h = decay_max * sigmoid(decay_logit): never above decay_max
        init = torch.linspace(cfg.decay_min, cfg.decay_max * 0.999, h) / cfg.decay_max
        self.decay_logit = nn.Parameter(torch.log(init / (1 - init)))
        self.decay_max = cfg.decay_max

    def log_decay(self) -> torch.Tensor:
        return torch.log(self.decay_max * torch.sigmoid(self.decay_logit))

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.w_in(self.norm(x)))

    def forward(
        self, spikes: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, _ = spikes.shape[1:]
        counts = spikes.sum(0)
        q, k, v, g = self.w_qkvg(counts).chunk(4, dim=-1)
        q, k, v = (t.view(b, s, self.n_heads, self.d_head).transpose(1, 2) for t in (q, k, v))
        y, state = retention(q, k * self.d_head**-0.5, v, self.log_decay(), state)
        y = self.out_norm(y).transpose(1, 2).reshape(b, s, -1)
        return self.w_out(y * F.silu(g)), state


class SpikingFFN(nn.Module):
    """Feed-forward path: a LIF population of d_ff neurons; its spike counts drive the stream."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(cfg.d_model)
        self.w_up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.lif = _population(cfg, cfg.d_ff)
        self.w_down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.w_up(self.norm(x)))

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.w_down(spikes.sum(0))


class SpikingBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.mix = SpikingMixer(cfg)
        self.ffn = SpikingFFN(cfg)


class SpikingLM(nn.Module):
    """A byte-level (by default) spiking LM with named adapter sites and streaming state."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg.validate()
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.encoder = _population(cfg, d)
        self.w_enc = nn.Linear(d, d, bias=False)
        self.blocks = nn.ModuleList(SpikingBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_out = nn.RMSNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size)
        self.gradient_checkpointing = False
        # Training only: dropout on what each path adds to the residual stream (GPT-2's
        # residual dropout), set by the trainer. Not part of the config: eval never drops.
        self.residual_dropout = 0.0
        # Single-token calls outside autograd run through fused kernels (fast_path.py);
        # False forces the generic path (the reference the fast path is tested against).
        self.fast_inference = True
        self._fast_step = None
        self._init_weights()
        T = cfg.timesteps
        sites = [SiteInfo("encoder", d, d, "residual", T)]
        for i in range(cfg.n_layers):
            sites.append(SiteInfo(f"blocks.{i}.mix", d, d, "residual", T))
            sites.append(SiteInfo(f"blocks.{i}.ffn", cfg.d_ff, d, "residual", T))
        sites.append(SiteInfo("readout", cfg.d_ff, cfg.vocab_size, "logits", T))
        self.sites = SiteRegistry(sites)

    def _init_weights(self) -> None:
        cfg = self.config
        d = cfg.d_model
        nn.init.normal_(self.embed.weight, std=1.0)
        out_std = 0.5 / (d * (2 * cfg.n_layers)) ** 0.5
        for name, p in self.named_parameters():
            if name.endswith(("w_in.weight", "w_up.weight", "w_qkvg.weight")):
                nn.init.normal_(p, std=1.5 / p.shape[1] ** 0.5)
            elif name.endswith(("w_out.weight", "w_down.weight")):
                nn.init.normal_(p, std=out_std * (d / p.shape[1]) ** 0.5 * 4)
            elif name.endswith("w_enc.weight"):
                nn.init.normal_(p, std=1.0 / p.shape[1] ** 0.5)
        nn.init.normal_(self.head.weight, std=0.5 / d**0.5)
        nn.init.zeros_(self.head.bias)

    # -- public API -------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def initial_state(self, batch: int = 1) -> LMState:
        """Zero state: the start of a conversation or stream."""
        p = self.head.weight
        h = self.config.n_heads
        dh = self.config.d_model // h
        z = [p.new_zeros(batch, h, dh, dh) for _ in self.blocks]
        return LMState(tuple(z))

    def forward(self, tokens: torch.Tensor, state: LMState | None = None) -> LMOutput:
        """Run tokens [B, S] from `state` (None = fresh); return logits, new state and rates."""
        fast = self._fast_path_for(tokens)
        if fast is not None:
            return fast(tokens, state)
        rates: dict[str, torch.Tensor] = {}
        spikes = self.encoder(self.embed(tokens))
        rates["encoder"] = spikes.mean()
        x = self.sites.run("encoder", spikes, self._dropped(self.w_enc(spikes.sum(0))))
        new_mix = []
        last_ffn = None
        for i, block in enumerate(self.blocks):
            prev = None if state is None else state.mix[i]
            if self.gradient_checkpointing and self.training:
                x, s_mix, sp_mix, sp_ffn = checkpoint(
                    self._block, i, block, x, prev, use_reentrant=False
                )
            else:
                x, s_mix, sp_mix, sp_ffn = self._block(i, block, x, prev)
            new_mix.append(s_mix)
            rates[f"blocks.{i}.mix"] = sp_mix.mean()
            rates[f"blocks.{i}.ffn"] = sp_ffn.mean()
            last_ffn = sp_ffn
        logits = self.head(self.norm_out(x))
        logits = self.sites.run("readout", last_ffn, logits)
        return LMOutput(logits, LMState(tuple(new_mix)), rates)

    def _fast_path_for(self, tokens: torch.Tensor):
        """The fused single-token path if it applies to this call (see fast_path.py), else None."""
        if not self.fast_inference or torch.is_grad_enabled() or tokens.shape[-1] != 1:
            return None
        if self._fast_step is None:
            from plastic.models.fast_path import FastStep

            self._fast_step = FastStep(self)
        return self._fast_step if self._fast_step.supports(tokens) else None

    def _block(self, i: int, block: SpikingBlock, x: torch.Tensor, prev: torch.Tensor | None):
        sp_mix = block.mix.spikes(x)
        dx, s_mix = block.mix(sp_mix, prev)
        x = self.sites.run(f"blocks.{i}.mix", sp_mix, x + self._dropped(dx))
        sp_ffn = block.ffn.spikes(x)
        x = self.sites.run(f"blocks.{i}.ffn", sp_ffn, x + self._dropped(block.ffn(sp_ffn)))
        return x, s_mix, sp_mix, sp_ffn

    def _dropped(self, update: torch.Tensor) -> torch.Tensor:
        if self.training and self.residual_dropout > 0:
            return F.dropout(update, self.residual_dropout, training=True)
        return update

    def memory_horizon(self, tolerance: float = 1e-12) -> int:
        """Tokens after which anything earlier weighs less than `tolerance` in the state.

        Token-mixing decays never exceed `decay_max`, so a token n steps back is scaled
        by at most decay_max**n: the state after a long input depends, to `tolerance`,
        only on its last `memory_horizon()` tokens (LIF membranes reset every token).
        """
        return int(math.ceil(math.log(tolerance) / math.log(self.config.decay_max)))

    @torch.no_grad()
    def decay_state(self, state: LMState, n_tokens: int) -> LMState:
        """The state after `n_tokens` tokens that contribute nothing (exact for the decay)."""
        mixed = []
        for block, s in zip(self.blocks, state.mix, strict=True):
            factor = torch.exp(block.mix.log_decay() * n_tokens).to(s.dtype)
            mixed.append(s * factor.view(1, -1, 1, 1))
        return LMState(tuple(mixed))

    @torch.no_grad()
    def step(self, token: torch.Tensor, state: LMState | None) -> LMOutput:
        """Advance by one token per batch row (token: [B]); returns logits [B, 1, vocab]."""
        return self.forward(token.view(-1, 1), state)
