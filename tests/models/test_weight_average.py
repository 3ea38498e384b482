"""`average_tail`: the run's average/ checkpoint is the mean of the weights after each of its
last steps, scored on validation, and it survives an exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from plastic.models.checkpoint import load_model
from plastic.models.train import train
from tests.models.conftest import small_train_config, train_interrupted_in_step

# a constant rate: the weights after step k do not depend on the run's length
CONSTANT_LR = dict(min_lr_ratio=1.0, warmup_steps=1)


def test_average_is_the_mean_of_the_last_steps_weights(data: Path, tmp_path: Path) -> None:
    steps, tail = 8, 0.5  # progress 5/8 ... 8/8 is past 1 - tail: steps 5, 6, 7 and 8
    done = train(
        small_train_config(data, tmp_path / "run", steps, average_tail=tail, **CONSTANT_LR)
    )
    assert done["averaged_steps"] == 4
    weights = []
    for k in range(5, 9):  # the same run stopped after k steps
        train(small_train_config(data, tmp_path / f"k{k}", k, **CONSTANT_LR))
        weights.append(load_model(tmp_path / f"k{k}" / "last").state_dict())
    assert not torch.equal(weights[0]["head.weight"], weights[-1]["head.weight"])
    averaged = load_model(tmp_path / "run" / "average").state_dict()
    for name, value in averaged.items():
        if value.is_floating_point():
            expected = torch.stack([w[name] for w in weights]).mean(0)
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    meta = json.loads((tmp_path / "run" / "average" / "config.json").read_text())["meta"]
    assert meta["averaged_steps"] == 4


def test_average_is_scored_on_validation(data: Path, tmp_path: Path) -> None:
    cfg = small_train_config(data, tmp_path / "run", 4, average_tail=0.5)
    cfg.valid = str(data)
    cfg.valid_bytes = 300
    done = train(cfg)
    score = done["average_valid_bpb"]
    assert score is not None and 0 < score < 9
    meta = json.loads((tmp_path / "run" / "average" / "config.json").read_text())["meta"]
    assert meta["valid_bpb"] == score
    assert not (tmp_path / "off").exists()
    off = train(small_train_config(data, tmp_path / "off", 4))
    assert "averaged_steps" not in off and not (tmp_path / "off" / "average").exists()


def test_resume_continues_the_average_exactly(data: Path, tmp_path: Path, monkeypatch) -> None:
    options = dict(average_tail=0.75)  # steps 2..6 of 6 (k/6 > 0.25); Ctrl-C in step 5
    train(small_train_config(data, tmp_path / "straight", 6, **options))
    resumed = tmp_path / "resumed"
    train_interrupted_in_step(small_train_config(data, resumed, 6, **options), 5, monkeypatch)
    assert train(small_train_config(data, resumed, 6, **options))["averaged_steps"] == 5

    def average_hash(out: Path) -> str:
        return json.loads((out / "average" / "config.json").read_text())["content_hash"]

    assert average_hash(resumed) == average_hash(tmp_path / "straight")
