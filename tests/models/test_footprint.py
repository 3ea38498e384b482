"""The footprint's parameter counts are exact and its activation estimate holds on configs
it was not fitted to (measured with autograd's saved-tensor hooks)."""

import pytest
import torch
import torch.nn.functional as F

from plastic.models.config import PRESETS, preset
from plastic.models.footprint import (
    activation_values_per_token,
    parameter_counts,
    training_footprint,
)
from plastic.models.spiking_lm import SpikingLM

CONFIGS = [
    dict(d_model=48, d_ff=80, n_layers=3, n_heads=4, t_fast=4, t_slow=1),
    dict(d_model=72, d_ff=200, n_layers=2, n_heads=6, t_fast=6, t_slow=2, vocab_size=333),
]


@pytest.mark.parametrize("overrides", [{}, *CONFIGS])
def test_parameter_counts_match_a_built_model(overrides: dict) -> None:
    cfg = preset("tiny", **overrides)
    counts = parameter_counts(cfg)
    model = SpikingLM(cfg)
    assert counts.total == model.num_parameters()
    assert counts.embedding == model.embed.weight.numel()
    assert counts.readout == model.head.weight.numel() + model.head.bias.numel()


def _saved_values_per_token(cfg, checkpointing: bool, batch: int = 2, seq: int = 24) -> float:
    torch.manual_seed(0)
    model = SpikingLM(cfg).train()
    model.gradient_checkpointing = checkpointing
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}
    kept: list[torch.Tensor] = []  # alive to the end: a freed storage's address is reused

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            storages[ptr] = t.untyped_storage().nbytes()
            kept.append(t)
        return t

    tokens = torch.randint(0, 256, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(tokens)
        F.cross_entropy(out.logits.reshape(-1, cfg.vocab_size), tokens.reshape(-1))
    return sum(storages.values()) / (4 * batch * seq)


@pytest.mark.parametrize("overrides", CONFIGS)
def test_activation_estimate_within_fifteen_percent(overrides: dict) -> None:
    cfg = preset("tiny", **overrides)
    measured = _saved_values_per_token(cfg, checkpointing=False)
    estimate = activation_values_per_token(cfg, checkpointing=False)
    assert abs(estimate - measured) <= 0.15 * measured, (estimate, measured)


def test_training_footprint_of_nord_144m() -> None:
    cfg = PRESETS["nord-144m"]
    plain = training_footprint(cfg, batch_size=8, seq_len=512, checkpointing=False)
    ckpt = training_footprint(cfg, batch_size=8, seq_len=512, checkpointing=True)
    assert plain.weights_bytes == 4 * plain.parameters
    assert plain.total_bytes_estimate == 16 * plain.parameters + plain.activation_bytes_estimate
    assert ckpt.activation_bytes_estimate < plain.activation_bytes_estimate
    assert ckpt.flops_per_token > plain.flops_per_token  # the recompute
