"""`plastic replay` and `plastic inspect` through the CLI, and their bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from plastic.cli.main import main
from tests.cli.test_errors import assert_one_line_error, run_main
from tests.plasticity.conftest import weights_of


def run_json(argv: list[str], capsys) -> dict:
    return json.loads(run_ok([*argv, "--json"], capsys))


def run_ok(argv: list[str], capsys) -> str:
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return capsys.readouterr().out


def test_replay_verify(recorded, capsys) -> None:
    summary = run_json(["replay", str(recorded.path), "--verify"], capsys)
    assert summary["exact"] and summary["max_abs_diff"] == 0.0 and summary["checkpoints"] >= 4
    assert summary["verdict"].startswith("reproduces the recorded weights")
    assert summary["tokens"] > 0 and summary["tokens_per_s"] > 0
    text = run_ok(["replay", str(recorded.path), "--verify", "--backend", "torch"], capsys)
    assert "(ok)" in text


def test_replay_out_writes_an_adapter_that_chat_loads(tmp_path: Path, recorded, capsys) -> None:
    from plastic.models.checkpoint import resolve_model
    from plastic.plasticity import PlasticModel

    out = tmp_path / "adapter"
    argv = ["replay", str(recorded.path), "--out", str(out), "--model", str(recorded.model_dir)]
    summary = run_json(argv, capsys)
    assert summary["out"] == str(out)
    loaded = PlasticModel.from_pretrained(resolve_model(str(recorded.model_dir)), out)
    want = weights_of(recorded.model)["default/readout"]
    assert np.array_equal(weights_of(loaded)["default/readout"], want)
    assert not list(tmp_path.glob(".adapter.tmp-*"))
    # an existing non-empty --out is refused before any work, and left as it was
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "already exists")
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]


def test_replay_counterfactual_and_closed_loop(recorded, capsys) -> None:
    argv = ["replay", str(recorded.path), "--rule", "stdp", "--set", "a_plus=0.01"]
    summary = run_json([*argv, "--model", str(recorded.model_dir)], capsys)
    assert not summary["exact"] and summary["counterfactual"]
    weights = summary["weights"]["default/readout"]
    assert weights["replayed_change"] > 0 and weights["recorded_change"] > 0
    assert weights["distance_to_recorded"] > 0
    text = summary["text"]
    assert text["bytes"] > 0
    for key in ("replayed_bits_per_byte", "recorded_bits_per_byte", "frozen_bits_per_byte"):
        assert 0 < text[key] < 16
    assert text["replayed_bits_per_byte"] != text["recorded_bits_per_byte"]
    assert "bits/byte" in summary["verdict"]
    printed = run_ok([*argv, "--model", str(recorded.model_dir)], capsys)
    assert "verdict: on the recorded user text" in printed and "frozen backbone" in printed
    # the recorded chat's "harm" reward depended on a switch outside the model (on for one
    # turn), which the replay cannot know: the closed loop says where it diverged, and fails
    closed = ["replay", str(recorded.path), "--closed-loop", "--model", str(recorded.model_dir)]
    with pytest.raises(SystemExit) as info:
        main([*closed, "--json"])
    captured = capsys.readouterr()
    assert info.value.code == 1
    assert "diverged after checkpoint" in captured.err and "feedback, undo, turn" in captured.err
    summary = json.loads(captured.out)  # the figures come out all the same
    assert summary["mode"] == "closed_loop" and summary["tokens_per_s"] > 0
    assert not summary["exact"] and summary["verdict"] == summary["divergence"]
    assert summary["checkpoints"][0]["max_abs_diff"] <= 1e-6  # exact before the harm turn
    code, err = run_main([*argv, "--verify"], capsys)
    assert_one_line_error(code, err, "--verify needs the recorded rule")


def test_inspect_everything(recorded, capsys) -> None:
    argv = ["inspect", str(recorded.path), "--rates", "--weights", "--reward"]
    report = run_json(argv, capsys)
    o = report["overview"]
    assert o["tokens"] > 0 and o["bytes_per_token"] > 0
    pre = report["rates"]["default/readout"]["pre"]
    assert 0.0 < pre["mean_rate"] < 1.0 and pre["neurons"] == 64 and len(pre["top"]) == 5
    assert pre["dead"] + pre["saturated"] <= 64
    corr = report["rate_vs_surprise"][0]
    assert -1 <= corr["r"] <= 1 and corr["fisher_ci95"][0] <= corr["r"] <= corr["fisher_ci95"][1]
    turns = report["weights"]["default/readout"]["turns"]
    assert turns and all(t["norm"] >= 0 for t in turns)
    assert report["reward"]["rewarded_tokens"] > 0 and report["reward"]["feedback"] == [1.0, -1.0]
    text = run_ok(["inspect", str(recorded.path), "--rates", "--site", "readout"], capsys)
    assert "rate vs surprise" in text and "mean rate" in text
    # the overview line names each count once, in words that say what it counts
    line = next(ln for ln in text.splitlines() if " tokens, " in ln)
    n_turns, n_feedback = o["turns"]["turn"], o["turns"]["feedback"]
    assert line.startswith(f"{o['sessions']} session")
    assert f"{n_turns} turns" in line and f"{n_feedback} feedback events" in line
    assert line.count("session") == 1 and "1 clean close" in line


def test_plot_without_matplotlib_is_one_line(recorded, capsys, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    code, err = run_main(["inspect", str(recorded.path), "--plot", "x.png"], capsys)
    assert_one_line_error(code, err, "plastic-snn[plot]")


# -- bad input: one line, exit 1, nothing overwritten ----------------------------------


def copy_store(recorded, tmp_path: Path) -> Path:
    path = tmp_path / "copy.zarr"
    shutil.copytree(recorded.path, path)
    return path


@pytest.mark.parametrize("command", ["inspect", "replay"])
def test_not_a_store(tmp_path: Path, capsys, command: str) -> None:
    code, err = run_main([command, str(tmp_path / "missing.zarr")], capsys)
    assert_one_line_error(code, err, "no such trace store")
    plain = tmp_path / "plain"
    plain.mkdir()
    code, err = run_main([command, str(plain)], capsys)
    assert_one_line_error(code, err, "not a Zarr")
    afile = tmp_path / "file.zarr"
    afile.write_text("hello")
    code, err = run_main([command, str(afile)], capsys)
    assert_one_line_error(code, err, "not a Zarr")
    assert afile.read_text() == "hello"


def test_other_zarr_store(tmp_path: Path, capsys) -> None:
    import zarr

    group = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    group.create_array("x", shape=(3,), dtype="i4")
    code, err = run_main(["inspect", str(tmp_path / "other.zarr")], capsys)
    assert_one_line_error(code, err, "not a plastic trace store")


def test_unknown_schema_version(tmp_path: Path, recorded, capsys) -> None:
    path = copy_store(recorded, tmp_path)
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["plastic_trace"]["version"] = 99
    meta.write_text(json.dumps(doc))
    for command in ("inspect", "replay"):
        code, err = run_main([command, str(path)], capsys)
        assert_one_line_error(code, err, "schema version 99")


def test_truncated_and_missing_arrays(tmp_path: Path, recorded, capsys) -> None:
    path = copy_store(recorded, tmp_path)
    shutil.rmtree(path / "events" / "value")
    code, err = run_main(["replay", str(path), "--verify"], capsys)
    assert_one_line_error(code, err, "events/value", "missing")
    path = copy_store(recorded, tmp_path / "b")
    meta = path / "tokens" / "bits" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["shape"] = [3]
    meta.write_text(json.dumps(doc))
    code, err = run_main(["inspect", str(path), "--rates"], capsys)
    assert_one_line_error(code, err, "tokens/bits", "truncated")


def test_missing_site(recorded, capsys) -> None:
    argv = ["inspect", str(recorded.path), "--rates", "--site", "blocks.9.ffn"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "no site", "default/readout")


def test_bad_set_and_backend(recorded, capsys) -> None:
    code, err = run_main(["replay", str(recorded.path), "--set", "nonsense"], capsys)
    assert_one_line_error(code, err, "key=value")
    code, err = run_main(["replay", str(recorded.path), "--backend", "gpu"], capsys)
    assert_one_line_error(code, err, "--backend")
    code, err = run_main(["replay", str(recorded.path), "--set", "no_such_param=1"], capsys)
    assert_one_line_error(code, err)


def test_closed_loop_with_another_backbone(recorded, tmp_path: Path, capsys) -> None:
    import torch

    from plastic.models.checkpoint import save_model
    from plastic.models.spiking_lm import SpikingLM
    from tests.conftest import small_config

    torch.manual_seed(7)
    other = tmp_path / "other"
    save_model(SpikingLM(small_config()).eval(), other)
    argv = ["replay", str(recorded.path), "--closed-loop", "--model", str(other)]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "recorded with backbone")


def test_plot_writes_a_png(recorded, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "fig.png"
    argv = ["inspect", str(recorded.path), "--rates", "--weights", "--reward", "--plot", str(out)]
    run_ok(argv, capsys)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chat_record_without_learn_keeps_every_backbone_site(
    tmp_path: Path, small_model_dir: Path, capsys
) -> None:
    """`chat --record` without --learn records per-token spike counts of every backbone
    site; `inspect --rates` reports each, and --plot draws a raster of a chosen one."""
    from plastic.models.checkpoint import resolve_model
    from plastic.replay.reader import TraceReader

    script = tmp_path / "turns.txt"
    script.write_text("Hello there.\nTell me more.\n", encoding="utf-8")
    path = tmp_path / "plain.zarr"
    argv = ["chat", "--model", str(small_model_dir), "--script", str(script)]
    run_ok([*argv, "--max-new-tokens", "6", "--seed", "1", "--record", str(path)], capsys)
    reader = TraceReader(path)
    backbone = resolve_model(str(small_model_dir))
    expected = [n for n, info in backbone.sites.info.items() if info.writes == "residual"]
    assert [e["site"] for e in reader.network_sites()] == expected
    for entry in reader.network_sites():
        counts = reader.network_counts(entry["site"])
        assert counts.shape == (reader.n_tokens, entry["neurons"])
        assert counts.max() <= entry["timesteps"]  # no unknown rows: every token recorded
    report = run_json(["inspect", str(path), "--rates"], capsys)
    assert set(report["network"]) == set(expected)
    for rates in report["network"].values():
        assert rates["steps"] == reader.n_tokens and 0.0 < rates["mean_rate"] < 1.0
        assert rates["sparsity"] == pytest.approx(1.0 - rates["mean_rate"])
    text = run_ok(["inspect", str(path), "--rates"], capsys)
    for name in expected:
        assert f"{name}: " in text
    assert "(memory): read 0 bytes learnt from" in text  # --record alone: the memory, not learning
    one = run_json(["inspect", str(path), "--rates", "--site", expected[0]], capsys)
    assert list(one["network"]) == [expected[0]] and one["rates"] == {}
    pytest.importorskip("matplotlib")
    out = tmp_path / "raster.png"
    argv = ["inspect", str(path), "--site", expected[1], "--window", "0:20", "--plot", str(out)]
    run_ok(argv, capsys)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, err = run_main(["inspect", str(path), "--window", "5", "--plot", str(out)], capsys)
    assert_one_line_error(code, err, "--window")


def test_network_rows_stay_aligned_with_tokens_across_sessions_and_interrupts(
    recorded, tmp_path: Path
) -> None:
    """Two sessions into one store (the second continues it) keep one network row per token."""
    from plastic.replay.reader import TraceReader
    from tests.replay.conftest import record_plain

    path = tmp_path / "two.zarr"
    record_plain(path, recorded.model_dir, turns=1)
    first = TraceReader(path).n_tokens
    record_plain(path, recorded.model_dir, turns=2)
    reader = TraceReader(path)
    assert reader.n_tokens > first
    for entry in reader.network_sites():
        counts = reader.network_counts(entry["site"])
        assert counts.shape[0] == reader.n_tokens
        assert counts.max() <= entry["timesteps"]
