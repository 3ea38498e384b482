"""`plastic bench chat` and `plastic_benchmarks.chat`: structure of the report at tiny sizes.

Speed is never asserted here (the machine may be loaded); only what the report contains.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plastic_benchmarks.chat import ChatBenchConfig, run_chat_bench, weight_matrices
from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.main import main  # noqa: F401  (registers every command on `app`)
from plastic.models.spiking_lm import SpikingLM


def test_report_structure(small_model: SpikingLM) -> None:
    report = run_chat_bench(small_model, ChatBenchConfig(near=10, far=60, tokens=4, repeats=2))
    near, far = report["positions"]
    assert (near["position"], far["position"]) == (10, 60)
    for row in (near, far):
        assert len(row["runs_tokens_per_s"]) == 2 and row["tokens_per_s"] > 0
    assert report["ratio"] == pytest.approx(far["tokens_per_s"] / near["tokens_per_s"])
    assert report["constant_cost"] == (report["ratio"] >= report["min_ratio"] == 0.9)
    assert report["peak_rss_mb"] > 0
    assert report["fast_path"] is True and report["timesteps"] == small_model.config.timesteps
    assert report["bare_ms"] > 0 and report["bare_once_ms"] > 0
    assert len(report["load_average"]["start"]) == 3
    best = min(max(near["runs_tokens_per_s"]), max(far["runs_tokens_per_s"]))
    assert report["ratio_to_bare_best"] == pytest.approx(best * min(report["bare_runs_ms"]) / 1e3)
    slower = min(near["tokens_per_s"], far["tokens_per_s"])
    assert report["ratio_to_bare"] == pytest.approx(slower / report["bare_tokens_per_s"])
    assert report["ratio_to_bare_once"] == pytest.approx(slower * report["bare_once_ms"] / 1e3)
    with pytest.raises(ValueError):
        run_chat_bench(small_model, ChatBenchConfig(near=50, far=50))


def test_cli_json(small_model_dir: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "chat",
            "--model",
            str(small_model_dir),
            "--near",
            "5",
            "--far",
            "30",
            "--tokens",
            "3",
            "--repeats",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.exception
    report = json.loads(result.stdout)
    assert [p["position"] for p in report["positions"]] == [5, 30]
    assert {"ratio", "peak_rss_mb", "tokens", "repeats", "memory_note"} <= set(report)


def test_bare_arithmetic_covers_every_weight_matrix(small_model: SpikingLM) -> None:
    mats = weight_matrices(small_model)
    cfg = small_model.config
    assert len(mats) == 2 + 5 * cfg.n_layers
    counted = sum(m.numel() for m in mats) + small_model.embed.weight.numel()
    vectors = sum(p.numel() for p in small_model.parameters() if p.dim() < 2)
    assert counted + vectors == small_model.num_parameters()


def test_generic_path_option(small_model: SpikingLM) -> None:
    cfg = ChatBenchConfig(near=5, far=20, tokens=2, repeats=1, fast_path=False)
    report = run_chat_bench(small_model, cfg)
    assert report["fast_path"] is False
    assert small_model.fast_inference is True  # restored after the run
