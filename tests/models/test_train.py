"""Training: exact resume after Ctrl-C, no --valid, options checked before any work."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from plastic.models.checkpoint import load_model
from plastic.models.train import STATE_JSON, TrainConfig, train
from tests.cli.test_errors import assert_one_line_error, run_main
from tests.models.conftest import small_train_config, train_interrupted_in_step


def config(data: Path, out: Path, steps: int = 6, **options) -> TrainConfig:
    return small_train_config(data, out, steps, **options)


def final_hash(out: Path) -> str:
    return json.loads((out / "last" / "config.json").read_text())["content_hash"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"dropout": 0.2},  # dropout draws from the saved torch RNG
        {"decay_lr_scale": 20.0},  # a third optimizer group, with its own lr
    ],
)
def test_resume_after_ctrl_c_mid_step_is_bit_exact(
    data: Path, tmp_path: Path, monkeypatch, options: dict
):
    """N steps straight == k steps, a Ctrl-C in the middle of step k+1, --resume to N."""
    straight = tmp_path / "straight"
    train(config(data, straight, **options))

    interrupted = tmp_path / "interrupted"
    train_interrupted_in_step(config(data, interrupted, **options), 4, monkeypatch)
    assert json.loads((interrupted / STATE_JSON).read_text())["step"] == 4  # a whole step
    train(config(data, interrupted, **options))  # resumes the run in `interrupted`
    assert json.loads((interrupted / STATE_JSON).read_text())["step"] == 6
    assert final_hash(interrupted) == final_hash(straight)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_decay_lr_scale_gives_the_mixing_decays_their_own_learning_rate(
    data: Path, tmp_path: Path
) -> None:
    """The decays' group runs at scale x the schedule's lr, so they move further."""
    train(config(data, tmp_path / "start", steps=1, lr=0.0))  # lr 0: the initial weights
    start = load_model(tmp_path / "start" / "last").blocks
    moved = {}
    for scale in (1.0, 50.0):
        out = tmp_path / f"scale{scale}"
        train(config(data, out, steps=4, lr=1e-3, decay_lr_scale=scale))
        groups = json.loads((out / STATE_JSON).read_text())["param_groups"]
        if scale == 1.0:
            assert len(groups) == 2 and all("lr_scale" not in g for g in groups)
        else:
            assert groups[2]["lr_scale"] == scale and groups[2]["weight_decay"] == 0.0
            assert groups[2]["lr"] == pytest.approx(scale * groups[0]["lr"])
        after = load_model(out / "last").blocks
        moved[scale] = max(
            float((b.mix.decay_logit - a.mix.decay_logit).detach().abs().max())
            for a, b in zip(start, after, strict=True)
        )
    assert moved[50.0] > 10 * moved[1.0] > 0


def test_train_without_valid_through_its_evaluations(data: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--steps", "2", "--batch-size"]
    argv += ["2", "--seq-len", "16", "--no-compile", "--eval-every", "0.000001"]
    try:
        from plastic.cli.main import main

        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    err = capsys.readouterr().err
    assert code == 0, err
    assert "valid n/a" in err and "done: 2 steps" in err
    assert (out / "last" / "config.json").is_file()


@pytest.mark.parametrize(
    "options, needle",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--seq-len", "1"], "--seq-len"),
        (["--target-rate", "2"], "--target-rate"),
        (["--eval-every", "inf"], "--eval-every"),
        (["--threads", "0"], "--threads"),
        (["--average-tail", "1.5"], "--average-tail"),
        (["--dropout", "1"], "--dropout"),
        (["--decay-lr-scale", "0"], "--decay-lr-scale"),
        (["--decay-max", "1"], "--decay-max"),
        (["--decay-max", "0.2"], "decay_max"),  # below the preset's decay_min
    ],
)
def test_bad_options_are_one_line(data: Path, tmp_path: Path, capsys, options, needle) -> None:
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "2"]
    code, err = run_main([*argv, *options], capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "run").exists()


def test_bad_paths_are_one_line(data: Path, tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, err = run_main(
        ["train", "--data", str(data), "--out", str(a_file), "--steps", "2"], capsys
    )
    assert_one_line_error(code, err, "is a file")
    code, err = run_main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err)
    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--steps", "2"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "is a directory")
