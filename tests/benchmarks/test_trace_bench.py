"""`plastic_benchmarks.trace`: the report's structure and invariants at tiny sizes."""

from __future__ import annotations

from plastic_benchmarks.trace import TraceBenchConfig, run_trace_bench

from tests.replay.conftest import save_small_model


def test_trace_bench_report(tmp_path) -> None:
    from plastic.models.checkpoint import resolve_model

    backbone = resolve_model(str(save_small_model(tmp_path / "model")))
    result = run_trace_bench(backbone, TraceBenchConfig(turns=2, reply_tokens=4, repeats=1))
    overhead = result["recording_overhead"]
    assert overhead["ratio"] > 0 and overhead["tokens_per_chat"] > 0
    storage = result["storage"]
    assert 0 < storage["raster_bytes_per_token"] < storage["bytes_per_token"]
    encodings = storage["encodings"]
    assert 0 < encodings["firing_fraction"] < 1
    assert encodings["bytes"]["bool_blosc_bitshuffle"] < encodings["bytes"]["raw_bool"]
    replay = result["replay"]
    assert replay["verify_max_abs_diff"] == 0.0
    assert replay["torch_vs_numba_max_abs_diff"] <= 1e-6
    assert replay["open_loop_tokens_per_s"] > 0 and replay["closed_loop_tokens_per_s"] > 0
