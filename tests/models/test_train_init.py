"""`plastic train --init DIR`: a new run starts from a checkpoint's weights and records its hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plastic.cli.main import main
from plastic.errors import ConfigError
from plastic.models.checkpoint import load_model, read_config
from plastic.models.train import STATE_JSON, TrainConfig, train
from tests.conftest import small_config

SMALL = {
    k: v
    for k, v in small_config().to_dict().items()
    if k in ("d_model", "n_layers", "d_ff", "n_heads", "t_fast", "t_slow", "name")
}


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_bytes(b"the quick brown fox jumps over the lazy dog. " * 40)
    return path


def _cfg(tmp_path: Path, init: Path, **kw) -> TrainConfig:
    base = dict(
        data=str(_text(tmp_path)),
        valid=None,
        out=str(tmp_path / "run"),
        steps=1,
        batch_size=2,
        seq_len=16,
        compile=False,
        model_overrides=dict(SMALL),
        init=str(init),
        lr=0.0,  # no update: the run's checkpoint must be the init checkpoint, bit for bit
    )
    base.update(kw)
    return TrainConfig(**base)


def test_init_starts_from_the_checkpoint_and_records_its_hash(
    small_model_dir: Path, tmp_path: Path
) -> None:
    init_hash = read_config(small_model_dir)["content_hash"]
    train(_cfg(tmp_path, small_model_dir))
    last = tmp_path / "run" / "last"
    doc = read_config(last)
    assert doc["content_hash"] == init_hash
    assert doc["meta"]["init_content_hash"] == init_hash
    assert load_model(last).content_hash == init_hash
    state = json.loads((tmp_path / "run" / STATE_JSON).read_text())
    assert state["init_content_hash"] == init_hash
    assert state["step"] == 1


def test_init_then_training_changes_the_weights(small_model_dir: Path, tmp_path: Path) -> None:
    init_hash = read_config(small_model_dir)["content_hash"]
    train(_cfg(tmp_path, small_model_dir, lr=1e-2, steps=2))
    doc = read_config(tmp_path / "run" / "last")
    assert doc["content_hash"] != init_hash
    assert doc["meta"]["init_content_hash"] == init_hash


def test_init_with_another_shape_is_refused_in_one_line(
    small_model_dir: Path, tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, small_model_dir, model_overrides=dict(SMALL, d_ff=128))
    with pytest.raises(ConfigError) as exc:
        train(cfg)
    msg = str(exc.value)
    assert "\n" not in msg and "d_ff 64 != 128" in msg
    assert not (tmp_path / "run" / STATE_JSON).exists()


def _run_main(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_cli_refuses_init_with_resume(small_model_dir: Path, tmp_path: Path, capsys) -> None:
    args = ["train", "--data", str(_text(tmp_path)), "--out", str(tmp_path / "run")]
    code, err = _run_main(
        [*args, "--steps", "1", "--init", str(small_model_dir), "--resume"], capsys
    )
    assert code == 1
    assert "error: --init starts a new run" in err and "Traceback" not in err


def test_cli_init_with_the_wrong_preset_is_one_line(
    small_model_dir: Path, tmp_path: Path, capsys
) -> None:
    args = ["train", "--data", str(_text(tmp_path)), "--out", str(tmp_path / "run")]
    args += ["--steps", "1", "--init", str(small_model_dir), "--no-compile"]
    code, err = _run_main(args, capsys)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not match --preset tiny" in errors[0]
    assert "Traceback" not in err
