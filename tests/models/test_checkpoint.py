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


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"n_layers": 1_000_000}, "n_layers must be between"),
        ({"d_model": 1e9}, "d_model must be an integer"),
        ({"n_heads": 0}, "n_heads must be between"),
        ({"t_fast": 1e300}, "t_fast must be an integer"),
        ({"n_layers": "4"}, "n_layers must be an integer, not str"),
        ({"d_ff": True}, "d_ff must be an integer, not bool"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"beta_init": 2.0}, "beta_init"),
        ({"surrogate": 3}, "surrogate must be text"),
        ({"n_layers": 3}, "do not fit: tensor blocks.2"),
        ({"d_ff": 96}, "do not fit"),
        ({"vocab_size": 300}, "do not fit"),
    ],
)
def test_hostile_configs_fail_before_allocation(
    small_model_dir: Path, change: dict, needle: str, monkeypatch
) -> None:
    """A config edit is a one-line CheckpointError before the model (or even the weight
    tensors) is allocated: nothing of the config's size is ever built."""
    import plastic.models.checkpoint as checkpoint

    path = small_model_dir / "config.json"
    doc = json.loads(path.read_text())
    doc["model"].update(change)
    path.write_text(json.dumps(doc))

    def no_allocation(*args, **kwargs):
        raise AssertionError("allocated before the config was checked")

    monkeypatch.setattr(checkpoint, "load_file", no_allocation)
    monkeypatch.setattr(checkpoint, "SpikingLM", no_allocation)
    with pytest.raises(CheckpointError, match=needle) as info:
        load_model(small_model_dir)
    assert "\n" not in str(info.value)


def test_the_content_hash_covers_the_model_config(small_model_dir: Path) -> None:
    """An edit that keeps every shape (a threshold) is another backbone: the hash fails."""
    path = small_model_dir / "config.json"
    doc = json.loads(path.read_text())
    assert doc["hash_version"] == 2
    doc["model"]["threshold"] = 0.5
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="content hash mismatch"):
        load_model(small_model_dir)


def test_version_1_checkpoints_keep_their_hash(small_model: SpikingLM, tmp_path: Path) -> None:
    """A checkpoint written before the hash covered the config loads, and keeps the hash
    that adapters, traces and caches recorded for it."""
    from plastic.models.checkpoint import content_hash

    digest = save_model(small_model, tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    v1 = content_hash(small_model.state_dict())
    assert v1 != digest
    del doc["hash_version"]
    doc["content_hash"] = v1
    (tmp_path / "m" / "config.json").write_text(json.dumps(doc))
    assert load_model(tmp_path / "m").content_hash == v1


def test_the_shipped_model_loads_with_its_recorded_hash() -> None:
    from plastic.models.checkpoint import DEFAULT_MODEL_DIR

    shipped = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert load_model(DEFAULT_MODEL_DIR).content_hash == shipped["content_hash"]
