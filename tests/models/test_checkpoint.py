"""Checkpoints: bit-identical round trip, content hash, and one-line errors for bad files."""

import json
from pathlib import Path

import pytest
import torch

from plastic.errors import CheckpointError
from plastic.models.checkpoint import (
    load_model,
    model_hash,
    read_config,
    resolve_model,
    save_model,
)
from plastic.models.spiking_lm import SpikingLM


def test_round_trip_gives_bit_identical_logits(small_model: SpikingLM, tmp_path: Path) -> None:
    digest = save_model(small_model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    tokens = torch.randint(0, 256, (2, 11))
    assert torch.equal(small_model(tokens).logits, loaded(tokens).logits)
    assert loaded.content_hash == digest == model_hash(small_model)
    assert read_config(tmp_path / "m")["parameters"] == small_model.num_parameters()


def test_hash_changes_with_any_weight(small_model: SpikingLM) -> None:
    before = model_hash(small_model)
    with torch.no_grad():
        small_model.head.bias[3] += 1e-6
    assert model_hash(small_model) != before


def test_hash_mismatch_is_reported(small_model_dir: Path) -> None:
    cfg_path = small_model_dir / "config.json"
    doc = json.loads(cfg_path.read_text())
    doc["content_hash"] = "0" * 64
    cfg_path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_model(small_model_dir)


def test_corrupt_weights_file(small_model_dir: Path) -> None:
    weights = small_model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt weights"):
        load_model(small_model_dir)


def test_flipped_byte_in_weights_is_caught(small_model_dir: Path) -> None:
    weights = small_model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_model(small_model_dir)


def test_corrupt_or_missing_config(small_model_dir: Path, tmp_path: Path) -> None:
    (small_model_dir / "config.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(CheckpointError, match="corrupt config"):
        load_model(small_model_dir)
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_model(tmp_path)


def test_weights_that_do_not_fit_the_config(small_model: SpikingLM, tmp_path: Path) -> None:
    save_model(small_model, tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    doc["model"]["d_ff"] = 128
    (tmp_path / "m" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "m")


def test_newer_format_is_refused(small_model_dir: Path) -> None:
    doc = json.loads((small_model_dir / "config.json").read_text())
    doc["format_version"] = 99
    (small_model_dir / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="newer"):
        load_model(small_model_dir)


def test_resolve_model_spec(small_model_dir: Path, tmp_path: Path) -> None:
    assert isinstance(resolve_model(str(small_model_dir)), SpikingLM)
    with pytest.raises(CheckpointError, match="no such directory or preset"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="nord-144m"):
        resolve_model("nord-144m")


def test_load_path_never_unpickles(small_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used on the load path")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    load_model(small_model_dir)
