"""Smoke test of the kernel benchmark code path (tiny sizes; structure only, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys

from plastic_benchmarks import kernels


def test_benchmark_report_structure() -> None:
    config = kernels.BenchConfig(
        sizes=(16,), probabilities=(0.2,), steps=20, repeats=1, bandwidth_floats=1 << 16
    )
    report = kernels.run(config)
    assert report["bandwidth"]["median_gb_s"] > 0
    assert [(row["rule"], row["n"], row["p"]) for row in report["rows"]] == [
        ("stdp", 16, 0.2),
        ("rstdp", 16, 0.2),
    ]
    for row in report["rows"]:
        for key in ("torch_msyn_s", "numba_msyn_s", "numba_over_torch", "numba_over_bound"):
            assert row[key] > 0
    assert "| rstdp | 16 | 0.2 |" in kernels.markdown_table(report)
    json.dumps(report)


def test_bench_kernels_command(tmp_path) -> None:
    out = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "plastic",
        "bench",
        "kernels",
        "--json",
        "--sizes",
        "8",
        "--probs",
        "0.5",
        "--steps",
        "10",
        "--repeats",
        "1",
        "--rules",
        "rstdp",
        "--output",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert json.loads(out.read_text())["rows"] == report["rows"]
    assert report["rows"][0]["rule"] == "rstdp"
