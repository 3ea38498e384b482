"""`plastic bench train`: the report of a short run, and its one-line errors."""

from __future__ import annotations

import json

import pytest
from plastic_benchmarks.train import TrainBenchConfig, run_train_bench

from plastic.models.config import preset
from plastic.models.footprint import parameter_counts
from tests.cli.test_errors import run_main

SMALL = dict(d_model=32, n_layers=1, d_ff=64, n_heads=4)


def test_report_of_a_short_cpu_run() -> None:
    cfg = TrainBenchConfig(batch_size=2, seq_len=16, steps=2, warmup=1, model_overrides=SMALL)
    report = run_train_bench(cfg)
    assert report["parameters"] == parameter_counts(preset("tiny", **SMALL)).total
    assert report["tokens_per_step"] == 32
    assert len(report["step_seconds"]) == 2 and report["tokens_per_s"] > 0
    assert report["peak_rss_bytes"] > 0 and report["dtype"] == "float32"
    assert report["grad_checkpointing"] is False  # cpu default, as `plastic train`
    assert report["footprint_estimate"]["parameters"] == report["parameters"]
    json.dumps(report, allow_nan=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "train", "--preset", "nope"], "unknown preset"),
        (["bench", "train", "--device", "tpu"], "--device must be cpu or cuda"),
    ],
)
def test_bad_options_are_one_line(argv, message, capsys) -> None:
    code, err = run_main(argv, capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
