"""The fast inference path of a `SpikingLM`: one token per row, no autograd, fused kernels.

Generation and token-by-token reading call the model with one token at a time, where the
generic path spends most of its time in Python (a snnTorch call per population per
timestep) and in small tensor operations. Here each path of a block is one compiled call
(`fused_kernels`) over preallocated buffers, with transposed copies of the weights made
once and rebuilt whenever a parameter changes (its data pointer or version counter).

What callers see is the generic path's: the same `LMOutput`, site hooks called with
spikes [T, B, 1, size] and their deltas added at the same points, fresh output tensors
every call (snapshots of the state stay valid), the same numbers up to float32 summation
order. Inference only: under autograd the model takes its generic path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from plastic.models import fused_kernels as fk
from plastic.models.outputs import LMOutput, LMState

if TYPE_CHECKING:
    from plastic.models.neurons import LIFPopulation
    from plastic.models.spiking_lm import SpikingLM


def _t(weight: torch.Tensor) -> np.ndarray:
    """A [in, out] float32 copy of a Linear's [out, in] weight, rows contiguous."""
    return weight.detach().t().contiguous().numpy()


def _eps(norm: torch.nn.RMSNorm) -> float:
    return float(norm.eps) if norm.eps is not None else float(torch.finfo(torch.float32).eps)


class _Population(NamedTuple):
    beta: np.ndarray  # clamp(beta, 0, 1), as snnTorch uses it
    threshold: np.float32


def _population(pop: LIFPopulation) -> _Population:
    beta = pop.lif.beta.detach().clamp(0, 1).float().contiguous().numpy()
    return _Population(beta, np.float32(float(pop.lif.threshold)))


class _Block(NamedTuple):
    mix_norm: np.ndarray
    mix_eps: float
    w_in_t: np.ndarray
    mix_pop: _Population
    w_qkvg_t: np.ndarray
    decay: np.ndarray  # g_h = exp(log_decay_h), float32
    out_norm: np.ndarray
    out_eps: float
    w_out_t: np.ndarray
    ffn_norm: np.ndarray
    ffn_eps: float
    w_up_t: np.ndarray
    ffn_pop: _Population
    w_down_t: np.ndarray


class _Weights(NamedTuple):
    embed: np.ndarray
    enc_pop: _Population
    w_enc_t: np.ndarray
    blocks: tuple[_Block, ...]


def _vector(p: torch.Tensor) -> np.ndarray:
    return p.detach().float().contiguous().numpy()


def _weights(model: SpikingLM) -> _Weights:
    blocks = []
    for block in model.blocks:
        mix, ffn = block.mix, block.ffn
        blocks.append(
            _Block(
                mix_norm=_vector(mix.norm.weight),
                mix_eps=_eps(mix.norm),
                w_in_t=_t(mix.w_in.weight),
                mix_pop=_population(mix.lif),
                w_qkvg_t=_t(mix.w_qkvg.weight),
                decay=_vector(torch.exp(mix.log_decay())),
                out_norm=_vector(mix.out_norm.weight),
                out_eps=_eps(mix.out_norm),
                w_out_t=_t(mix.w_out.weight),
                ffn_norm=_vector(ffn.norm.weight),
                ffn_eps=_eps(ffn.norm),
                w_up_t=_t(ffn.w_up.weight),
                ffn_pop=_population(ffn.lif),
                w_down_t=_t(ffn.w_down.weight),
            )
        )
    return _Weights(
        embed=model.embed.weight.detach().contiguous().numpy(),
        enc_pop=_population(model.encoder),
        w_enc_t=_t(model.w_enc.weight),
        blocks=tuple(blocks),
    )


class FastStep:
    """Runs `SpikingLM.forward` for tokens [B, 1] without autograd through fused kernels."""

    def __init__(self, model: SpikingLM) -> None:
        self.model = model
        cfg = model.config
        self._params = list(model.parameters())
        self._key: tuple | None = None
        self._w: _Weights | None = None
        self._k_scale = np.float32((cfg.d_model // cfg.n_heads) ** -0.5)
        self._work_size = max(9 * cfg.d_model, 2 * cfg.d_model + 2 * cfg.d_ff)
        # Scratch (the residual stream, the kernels' work area) per batch size, taken from a
        # pool for the length of a call: a hook that calls the model, or a second thread,
        # gets buffers of its own.
        self._pool: dict[int, list[tuple[torch.Tensor, np.ndarray]]] = {}
        self._zero_state: dict[int, np.ndarray] = {}
        names = ["encoder"]
        for i in range(cfg.n_layers):
            names += [f"blocks.{i}.mix", f"blocks.{i}.ffn"]
        self._site_names = names

    def supports(self, tokens: torch.Tensor) -> bool:
        """True for one CPU float32 token per row outside autograd."""
        emb = self.model.embed.weight
        return (
            tokens.dim() == 2
            and tokens.shape[1] == 1
            and tokens.device.type == "cpu"
            and emb.device.type == "cpu"
            and emb.dtype == torch.float32
            and not torch.is_grad_enabled()
        )

    def weights(self) -> _Weights:
        """The kernels' weight arrays, rebuilt if any parameter changed since the last call."""
        key = tuple((p.data_ptr(), p._version) for p in self._params)
        if key != self._key or self._w is None:
            with torch.no_grad():
                self._w = _weights(self.model)
            self._key = key
        return self._w

    def _state_in(self, state: LMState | None, i: int, shape: tuple[int, ...]) -> np.ndarray:
        if state is None:
            zero = self._zero_state.get(shape[0])
            if zero is None:
                zero = self._zero_state[shape[0]] = np.zeros(shape, np.float32)
            return zero
        s = state.mix[i]
        if s.dtype != torch.float32 or not s.is_contiguous():
            s = s.float().contiguous()
        return s.numpy()

    def _site(self, name: str, spikes: torch.Tensor, x: torch.Tensor) -> None:
        """Call the site's hooks (if any) and add their deltas to the stream x in place."""
        sites = self.model.sites
        if sites.has_hooks(name):
            out = sites.run(name, spikes, x)
            if out is not x:
                x.copy_(out)

    def __call__(self, tokens: torch.Tensor, state: LMState | None) -> LMOutput:
        b = tokens.shape[0]
        pool = self._pool.setdefault(b, [])
        try:
            buffers = pool.pop()
        except IndexError:
            buffers = (
                torch.zeros(b, 1, self.model.config.d_model),
                np.zeros(self._work_size, np.float32),
            )
        try:
            return self._run(tokens, state, *buffers)
        finally:
            pool.append(buffers)

    def _run(
        self, tokens: torch.Tensor, state: LMState | None, x: torch.Tensor, work: np.ndarray
    ) -> LMOutput:
        model, cfg, w = self.model, self.model.config, self.weights()
        b, d, t = tokens.shape[0], cfg.d_model, cfg.timesteps
        heads = cfg.n_heads
        dh = d // heads
        xn = x.numpy()[:, 0]
        ids = tokens.reshape(-1).to(torch.int64).numpy()
        totals = []
        spikes = torch.empty(t, b, 1, d)
        enc = w.enc_pop
        totals.append(
            fk.encoder_path(
                ids, w.embed, enc.beta, enc.threshold, cfg.t_fast, w.w_enc_t,
                spikes.numpy()[:, :, 0], xn, work,
            )
        )  # fmt: skip
        if totals[0] < 0:
            raise IndexError(f"token ids must lie in [0, {cfg.vocab_size})")
        self._site("encoder", spikes, x)
        new_state = []
        for i, blk in enumerate(w.blocks):
            shape = (b, heads, dh, dh)
            s_out = torch.empty(shape)
            sp_mix = torch.empty(t, b, 1, d)
            totals.append(
                fk.mix_path(
                    xn, blk.mix_norm, blk.mix_eps, blk.w_in_t, blk.mix_pop.beta,
                    blk.mix_pop.threshold, cfg.t_fast, blk.w_qkvg_t, blk.decay, self._k_scale,
                    self._state_in(state, i, shape), s_out.numpy(), blk.out_norm, blk.out_eps,
                    blk.w_out_t, sp_mix.numpy()[:, :, 0], work,
                )
            )  # fmt: skip
            new_state.append(s_out)
            self._site(f"blocks.{i}.mix", sp_mix, x)
            spikes = torch.empty(t, b, 1, cfg.d_ff)
            totals.append(
                fk.ffn_path(
                    xn, blk.ffn_norm, blk.ffn_eps, blk.w_up_t, blk.ffn_pop.beta,
                    blk.ffn_pop.threshold, cfg.t_fast, blk.w_down_t, spikes.numpy()[:, :, 0],
                    work,
                )
            )  # fmt: skip
            self._site(f"blocks.{i}.ffn", spikes, x)
        head = model.head
        logits = F.linear(
            F.rms_norm(x, (d,), model.norm_out.weight, model.norm_out.eps),
            head.weight,
            head.bias,
        )
        logits = model.sites.run("readout", spikes, logits)
        sizes = [d] + [d, cfg.d_ff] * cfg.n_layers
        rates = torch.tensor([n / (t * b * s) for n, s in zip(totals, sizes, strict=True)])
        return LMOutput(
            logits,
            LMState(tuple(new_state)),
            dict(zip(self._site_names, rates.unbind(), strict=True)),
        )
