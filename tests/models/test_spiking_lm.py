"""Shapes, spikes, sites, streaming state and determinism of the backbone."""

import pytest
import torch

from plastic.errors import ConfigError
from plastic.models.config import PRESETS, preset
from plastic.models.footprint import parameter_counts
from plastic.models.spiking_lm import SpikingLM
from tests.conftest import small_config


def test_shapes_and_rates(small_model: SpikingLM) -> None:
    tokens = torch.randint(0, 256, (3, 17))
    out = small_model(tokens)
    cfg = small_model.config
    assert out.logits.shape == (3, 17, cfg.vocab_size)
    assert len(out.state.mix) == cfg.n_layers
    assert out.state.mix[0].shape == (
        3,
        cfg.n_heads,
        cfg.d_model // cfg.n_heads,
        cfg.d_model // cfg.n_heads,
    )
    expected_sites = {"encoder"} | {
        f"blocks.{i}.{p}" for i in range(cfg.n_layers) for p in ("mix", "ffn")
    }
    assert set(out.rates) == expected_sites
    for rate in out.rates.values():
        assert 0.0 <= float(rate.detach()) <= 1.0


def test_neurons_emit_binary_spikes(small_model: SpikingLM) -> None:
    seen = {}

    def probe(site, spikes):
        seen[site.name] = spikes
        return None

    for name in small_model.sites.info:
        small_model.sites.add_hook(name, probe)
    small_model(torch.randint(0, 256, (2, 5)))
    cfg = small_model.config
    assert seen["blocks.1.ffn"].shape == (cfg.timesteps, 2, 5, cfg.d_ff)
    for spikes in seen.values():
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert seen["readout"] is seen["blocks.1.ffn"]  # readout reads the last layer's spikes


def test_site_hooks_write_back_and_detach(small_model: SpikingLM) -> None:
    tokens = torch.randint(0, 256, (1, 6))
    base = small_model(tokens).logits
    bump = torch.zeros(small_model.config.vocab_size)
    bump[65] = 5.0
    handle = small_model.sites.add_hook("readout", lambda site, spikes: bump.expand(1, 6, -1))
    hooked = small_model(tokens).logits
    torch.testing.assert_close(hooked - base, bump.expand(1, 6, -1))
    handle.remove()
    torch.testing.assert_close(small_model(tokens).logits, base)
    with pytest.raises(ConfigError, match="no site named"):
        small_model.sites.add_hook("blocks.9.ffn", lambda s, x: None)


def test_residual_site_changes_downstream(small_model: SpikingLM) -> None:
    tokens = torch.randint(0, 256, (1, 4))
    base = small_model(tokens).logits
    small_model.sites.add_hook(
        "blocks.0.mix", lambda site, spikes: torch.full(spikes.shape[1:3] + (site.write_dim,), 3.0)
    )
    assert not torch.allclose(small_model(tokens).logits, base)


def _close_fraction(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> float:
    return float(((a - b).abs() <= tol).float().mean())


def test_streaming_equals_parallel() -> None:
    """Token-by-token generation with carried state computes the same logits as one pass.

    A spike can flip when a membrane sits within float rounding of threshold, so we
    require nearly all positions to match rather than bit equality.
    """
    for seed in range(3):
        torch.manual_seed(seed)
        model = SpikingLM(small_config()).eval()
        tokens = torch.randint(0, 256, (2, 40))
        full = model(tokens).logits
        state, steps = None, []
        for t in range(tokens.shape[1]):
            out = model.step(tokens[:, t], state)
            state, _ = out.state, steps.append(out.logits)
        assert _close_fraction(torch.cat(steps, 1), full) > 0.99
        first = model(tokens[:, :13])
        second = model(tokens[:, 13:], first.state)
        assert _close_fraction(torch.cat([first.logits, second.logits], 1), full) > 0.99


def test_state_matters_and_initial_state_is_zero(small_model: SpikingLM) -> None:
    a = small_model(torch.tensor([[10, 20, 30]]))
    fresh = small_model(torch.tensor([[40]]))
    carried = small_model(torch.tensor([[40]]), a.state)
    assert not torch.allclose(fresh.logits, carried.logits)
    zero = small_model.initial_state(1)
    torch.testing.assert_close(small_model(torch.tensor([[40]]), zero).logits, fresh.logits)


def test_seeded_init_is_deterministic() -> None:
    torch.manual_seed(7)
    a = SpikingLM(small_config())
    torch.manual_seed(7)
    b = SpikingLM(small_config())
    tokens = torch.randint(0, 256, (1, 9))
    assert torch.equal(a.eval()(tokens).logits, b.eval()(tokens).logits)


def test_gradients_flow_through_surrogates() -> None:
    torch.manual_seed(0)
    model = SpikingLM(small_config())
    out = model(torch.randint(0, 256, (2, 8)))
    out.logits.sum().backward()
    assert model.blocks[0].ffn.w_up.weight.grad.abs().sum() > 0  # only reachable through spikes
    assert model.embed.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid", "triangular"])
def test_surrogate_chosen_by_argument(surrogate: str) -> None:
    model = SpikingLM(small_config(surrogate=surrogate))
    model(torch.randint(0, 256, (1, 3))).logits.sum().backward()
    assert model.blocks[0].ffn.w_up.weight.grad is not None


def test_bad_configs_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        preset("tiny", d_model=30, n_heads=4)
    with pytest.raises(ConfigError):
        preset("tiny", surrogate="nope")
    with pytest.raises(ConfigError):
        preset("huge")


def test_tiny_presets_fit_the_budget() -> None:
    assert SpikingLM(PRESETS["tiny"]).num_parameters() <= 10_000_000
    assert SpikingLM(PRESETS["tiny-wide"]).num_parameters() <= 15_000_000  # issue 17's limit


def test_nord_144m_is_byte_level_with_its_parameters_in_the_network() -> None:
    torch.manual_seed(0)
    cfg = preset("nord-144m")
    assert cfg.tokenizer == "byte" and cfg.vocab_size == 260
    model = SpikingLM(cfg).eval()
    n = model.num_parameters()
    assert abs(n - 144e6) <= 0.05 * 144e6, n
    counts = parameter_counts(cfg)
    assert counts.total == n
    assert counts.embedding_readout_fraction < 0.05
    assert model.config.timesteps == 10  # T_fast 8 + T_slow 2
    state, token = None, torch.tensor([1])
    for _ in range(2):
        out = model.step(token, state)
        state = out.state
        token = out.logits[:, -1].argmax(-1)
    assert out.logits.shape == (1, 1, 260)
    assert 0 <= int(token) < 260


def test_a_preset_needing_a_missing_tokenizer_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs tokenizer 'external', which plastic lacks"):
        preset("nord-144m", tokenizer="external", vocab_size=128_256)


def test_residual_dropout_acts_only_while_training(small_model: SpikingLM) -> None:
    tokens = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        clean = small_model(tokens).logits
        small_model.residual_dropout = 0.3
        torch.testing.assert_close(small_model(tokens).logits, clean)  # eval: never drops
        small_model.train()
        try:
            first, second = small_model(tokens).logits, small_model(tokens).logits
            small_model.residual_dropout = 0.0
            torch.testing.assert_close(small_model(tokens).logits, clean)
        finally:
            small_model.residual_dropout = 0.0
            small_model.eval()
    assert not torch.allclose(first, clean) and not torch.allclose(first, second)
