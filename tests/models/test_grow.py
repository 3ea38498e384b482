"""Growing a trained backbone: widened FFN populations compute the same function, and the
noise on the copies is what lets training tell them apart; a raised decay ceiling keeps the
function and frees the slowest heads."""

import pytest
import torch
import torch.nn.functional as F

from plastic.models.grow import raise_decay_ceiling, widen_ffn
from plastic.models.spiking_lm import SpikingLM


def test_copies_fire_together_and_outputs_are_unchanged(small_model: SpikingLM) -> None:
    wide = widen_ffn(small_model, 3)
    assert wide.config.d_ff == 3 * small_model.config.d_ff
    assert wide.num_parameters() > small_model.num_parameters()
    seen: dict[str, torch.Tensor] = {}

    def probe(site, spikes):
        seen[site.name] = spikes
        return None

    wide.sites.add_hook("blocks.1.ffn", probe)
    tokens = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        narrow_out, wide_out = small_model(tokens), wide(tokens)
    torch.testing.assert_close(wide_out.logits, narrow_out.logits, atol=1e-4, rtol=1e-4)
    for name, rate in narrow_out.rates.items():
        assert float(wide_out.rates[name]) == pytest.approx(float(rate), abs=1e-6)
    copies = seen["blocks.1.ffn"].unflatten(-1, (-1, 3))  # [T, B, S, d_ff, copy]
    assert torch.equal(copies[..., 0], copies[..., 1]) and copies.sum() > 0


def _rows_apart_after_training(model: SpikingLM) -> float:
    """How far the first two copies' input rows are after a few Adam steps."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    tokens = torch.randint(0, 256, (4, 33), generator=torch.Generator().manual_seed(1))
    for _ in range(5):
        out = model(tokens[:, :-1])
        loss = F.cross_entropy(out.logits.flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = model.blocks[0].ffn.w_up.weight.detach().unflatten(0, (-1, 2))  # [d_ff, copy, d]
    return float((w[:, 0] - w[:, 1]).abs().max())


def test_noise_lets_training_separate_the_copies(small_model: SpikingLM) -> None:
    torch.manual_seed(0)
    assert _rows_apart_after_training(widen_ffn(small_model, 2, noise=0.0)) == 0.0
    noisy = widen_ffn(small_model, 2, noise=0.03, seed=5)
    w = noisy.blocks[0].ffn.w_up.weight.detach().unflatten(0, (-1, 2))
    torch.testing.assert_close(w.mean(1), small_model.blocks[0].ffn.w_up.weight)  # zero-sum
    start = float((w[:, 0] - w[:, 1]).abs().max())
    assert _rows_apart_after_training(noisy) > 1.5 * start  # measured: 1.8x


def test_factor_must_be_positive(small_model: SpikingLM) -> None:
    with pytest.raises(ValueError, match="factor"):
        widen_ffn(small_model, 0)


def test_raised_decay_ceiling_keeps_every_decay_and_output(small_model: SpikingLM) -> None:
    grown = raise_decay_ceiling(small_model, 0.999)
    assert grown.config.decay_max == 0.999 and small_model.config.decay_max < 0.999
    for old, new in zip(small_model.blocks, grown.blocks, strict=True):
        torch.testing.assert_close(new.mix.log_decay(), old.mix.log_decay(), atol=1e-6, rtol=0)
        assert not torch.equal(new.mix.decay_logit, old.mix.decay_logit)
    tokens = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(grown(tokens).logits, small_model(tokens).logits)


def test_only_a_raised_ceiling_lets_the_slowest_head_lengthen(small_model: SpikingLM) -> None:
    """Minimising a loss that rewards long memory: under the old ceiling the slowest head
    is stuck just below it; under a raised one the same steps carry it past."""

    def slowest_after_training(model: SpikingLM) -> float:
        opt = torch.optim.Adam([b.mix.decay_logit for b in model.blocks], lr=0.05)
        for _ in range(40):
            loss = -sum(b.mix.log_decay().max() for b in model.blocks)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return max(float(b.mix.log_decay().detach().exp().max()) for b in model.blocks)

    ceiling = small_model.config.decay_max
    grown = raise_decay_ceiling(small_model, 0.999)
    assert slowest_after_training(small_model) < ceiling
    assert slowest_after_training(grown) > ceiling + 0.005


def test_the_ceiling_cannot_be_lowered(small_model: SpikingLM) -> None:
    with pytest.raises(ValueError, match="decay_max"):
        raise_decay_ceiling(small_model, small_model.config.decay_max - 0.1)
