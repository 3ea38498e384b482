"""Fixtures of the training tests: a small text and a small model's training config."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from plastic.models import train as train_module
from plastic.models.train import TrainConfig

SMALL = dict(d_model=32, n_layers=2, d_ff=64, n_heads=4, name="test-small")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = random.Random(0)
    words = ["spike", "neuron", "synapse", "learns", "the", "a", "slowly", "fires"]
    path = tmp_path / "train.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(1500)))
    return path


def small_train_config(data: Path, out: Path, steps: int, **options: Any) -> TrainConfig:
    """A few steps of the SMALL model on `data`, no validation, no compile."""
    settings: dict[str, Any] = dict(
        batch_size=2, seq_len=16, warmup_steps=2, eval_every_s=1e9, compile=False
    )
    settings.update(options)
    return TrainConfig(
        data=str(data), valid=None, out=str(out), steps=steps, model_overrides=SMALL, **settings
    )


def train_interrupted_in_step(cfg: TrainConfig, step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run `cfg` with a Ctrl-C (SIGINT) in the middle of step `step` - after its batch was
    drawn - and expect the KeyboardInterrupt that ends the run once that step is saved."""
    calls = {"n": 0}
    real_penalty = train_module.rate_penalty

    def penalty_then_sigint(rates, target):  # runs mid-step: after the batch was drawn
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGINT)
        return real_penalty(rates, target)

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "rate_penalty", penalty_then_sigint)
        with pytest.raises(KeyboardInterrupt):
            train_module.train(cfg)
