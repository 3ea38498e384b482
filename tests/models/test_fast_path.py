"""The fused single-token inference path agrees with the generic path and with the parallel one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plastic.models import fused_kernels as fk
from plastic.models.fast_path import FastStep
from plastic.models.neurons import LIFPopulation
from plastic.models.spiking_lm import SpikingLM
from tests.conftest import small_config


def _stream(model: SpikingLM, tokens: torch.Tensor, *, fast: bool):
    """Token-by-token logits [B, S, V] and every site's spikes, fast or generic path."""
    model.fast_inference = fast
    seen: dict[str, list[torch.Tensor]] = {}

    def probe(site, spikes):
        seen.setdefault(site.name, []).append(spikes.clone())

    handles = [model.sites.add_hook(name, probe) for name in model.sites.info]
    state, logits = None, []
    with torch.no_grad():
        for t in range(tokens.shape[1]):
            out = model(tokens[:, t : t + 1], state)
            state = out.state
            logits.append(out.logits)
    for h in handles:
        h.remove()
    model.fast_inference = True
    return torch.cat(logits, 1), {k: torch.cat(v, 2) for k, v in seen.items()}, state


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_fast_path_agrees_with_generic_and_parallel_paths(seed: int, batch: int) -> None:
    torch.manual_seed(seed)
    model = SpikingLM(small_config()).eval()
    tokens = torch.randint(0, 256, (batch, 48))
    fast, fast_spikes, fast_state = _stream(model, tokens, fast=True)
    slow, slow_spikes, slow_state = _stream(model, tokens, fast=False)
    with torch.no_grad():
        full = model(tokens)
    assert fast_spikes.keys() == slow_spikes.keys()
    for name, spikes in fast_spikes.items():
        assert spikes.shape == slow_spikes[name].shape
        # a spike may flip where a membrane sits within float32 rounding of threshold
        assert float((spikes != slow_spikes[name]).float().mean()) < 1e-3, name
    for other in (slow, full.logits):
        close = ((fast - other).abs() <= 1e-5).all(-1).float().mean()
        assert float(close) >= 0.98
    for a, b in zip(fast_state.mix, full.state.mix, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_lif_kernel_is_bit_identical_to_the_population() -> None:
    torch.manual_seed(0)
    pop = LIFPopulation(
        512,
        t_fast=3,
        t_slow=2,
        beta_init=0.9,
        threshold=1.0,
        surrogate="atan",
        surrogate_scale=2.0,
    )
    with torch.no_grad():
        pop.lif.beta.copy_(torch.rand(512) * 1.2)  # some outside [0, 1]: snnTorch clamps
    current = torch.cat([torch.randn(384) * 2, torch.full((128,), 1.0 / 3.0)])
    with torch.no_grad():
        expected = pop(current)
    spikes = np.empty((5, 512), np.float32)
    counts = np.empty(512, np.float32)
    beta = pop.lif.beta.detach().clamp(0, 1).numpy()
    total = fk.lif_counts(current.numpy(), beta, np.float32(1.0), 3, spikes, counts)
    assert torch.equal(torch.from_numpy(spikes), expected)
    assert torch.equal(torch.from_numpy(counts), expected.sum(0))
    assert total == int(expected.sum())


def test_fast_path_runs_hooks_and_adds_their_deltas(small_model: SpikingLM) -> None:
    tokens = torch.tensor([[5, 6, 7, 8]])
    cfg = small_model.config

    def bump(site, spikes):
        assert spikes.shape == (cfg.timesteps, 1, 1, site.size)
        return torch.full((1, 1, site.write_dim), 0.25)

    handles = [small_model.sites.add_hook(n, bump) for n in ("blocks.0.mix", "readout")]
    fast, _, _ = _stream(small_model, tokens, fast=True)
    slow, _, _ = _stream(small_model, tokens, fast=False)
    for h in handles:
        h.remove()
    plain, _, _ = _stream(small_model, tokens, fast=True)
    assert not torch.allclose(fast, plain)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_outputs_are_fresh_and_inputs_untouched(small_model: SpikingLM) -> None:
    with torch.no_grad():
        first = small_model(torch.tensor([[3]]))
        kept = [s.clone() for s in first.state.mix]
        logits = first.logits.clone()
        second = small_model(torch.tensor([[4]]), first.state)
        small_model(torch.tensor([[9]]), second.state)
    for s, k in zip(first.state.mix, kept, strict=True):
        assert torch.equal(s, k)
    assert torch.equal(first.logits, logits)
    assert all(a is not b for a, b in zip(first.state.mix, second.state.mix, strict=True))


def test_weight_changes_reach_the_fast_path(small_model: SpikingLM) -> None:
    token = torch.tensor([[42]])
    with torch.no_grad():
        before = small_model(token).logits
        small_model.blocks[0].ffn.w_down.weight.mul_(3.0)
        small_model.head.bias.add_(1.0)
        after = small_model(token).logits
        small_model.fast_inference = False
        reference = small_model(token).logits
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference, atol=1e-5, rtol=1e-5)


def test_autograd_takes_the_generic_path(small_model: SpikingLM) -> None:
    out = small_model(torch.tensor([[1]]))
    assert out.logits.requires_grad
    fast = FastStep(small_model)
    assert not fast.supports(torch.tensor([[1]]))
    with torch.no_grad():
        assert fast.supports(torch.tensor([[1]]))
        assert not fast.supports(torch.tensor([[1, 2]]))
        assert not small_model(torch.tensor([[1]])).logits.requires_grad


def test_out_of_vocabulary_tokens_are_refused(small_model: SpikingLM) -> None:
    vocab = small_model.config.vocab_size
    with torch.no_grad():
        for bad in (vocab, -1):
            with pytest.raises(IndexError):
                small_model(torch.tensor([[bad]]))


def test_a_hook_may_run_the_model_itself(small_model: SpikingLM) -> None:
    """Reentrant calls (a hook that reads a token with the same model) get their own buffers."""
    tokens = torch.tensor([[11], [12]])
    with torch.no_grad():
        expected = small_model(tokens).logits

        depth = [0]

        def nested(site, spikes):
            if depth[0] == 0:  # the inner call runs this hook too: nest once
                depth[0] += 1
                small_model(torch.tensor([[99], [98]]))
                depth[0] -= 1
            return None

        handle = small_model.sites.add_hook("blocks.0.ffn", nested)
        got = small_model(tokens).logits
        handle.remove()
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
