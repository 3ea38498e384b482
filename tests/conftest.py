"""Shared fixtures: a small random-initialised backbone (tests never retrain the shipped one)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plastic.models.checkpoint import save_model
from plastic.models.config import ModelConfig, preset
from plastic.models.spiking_lm import SpikingLM

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def small_config(**overrides) -> ModelConfig:
    """A model small enough for fast tests, with every feature of the real one."""
    base = dict(d_model=32, n_layers=2, d_ff=64, n_heads=4, t_fast=3, t_slow=1, name="test-small")
    base.update(overrides)
    return preset("tiny", **base)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test runs torch on one thread: tiny tensors, and CI's two cores are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _cache_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Caches the package keeps between runs (the drift probe's backbone passes) go to the
    session's temporary directory, never to the user's ~/.cache."""
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def small_model() -> SpikingLM:
    torch.manual_seed(1234)
    return SpikingLM(small_config()).eval()


@pytest.fixture
def small_model_dir(tmp_path: Path, small_model: SpikingLM) -> Path:
    """A saved checkpoint directory of `small_model`, for CLI tests (`--model DIR`)."""
    out = tmp_path / "model"
    small_model.content_hash = save_model(small_model, out)
    return out


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
