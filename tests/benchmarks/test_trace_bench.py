"""`plastic_benchmarks.trace`: the report's structure and invariants at tiny sizes."""

from __future__ import annotations

import pytest
from plastic_benchmarks.trace import TraceBenchConfig, run_trace_bench

from tests.replay.conftest import save_small_model


@pytest.mark.parametrize("rule", ["rstdp", "detector_stdp"])
def test_trace_bench_report(tmp_path, rule: str) -> None:
    from plastic.models.checkpoint import resolve_model

    backbone = resolve_model(str(save_small_model(tmp_path / "model")))
    cfg = TraceBenchConfig(turns=2, reply_tokens=4, repeats=1, rule=rule)
    result = run_trace_bench(backbone, cfg)
    overhead = result["recording_overhead"]
    assert overhead["ratio"] > 0 and overhead["tokens_per_chat"] > 0
    assert overhead["turn_ms"]["plain"] > 0 and overhead["turn_ms"]["recording"] > 0
    storage = result["storage"]
    assert storage["bytes_per_turn"] == pytest.approx(storage["bytes"] / 2)
    memory = storage["memory_bytes"]
    if rule == "detector_stdp":  # the memory: its reads' logits and its states, no rasters
        assert storage["raster_bytes_per_token"] == 0
        assert memory["read_logits"] > 0 and memory["checkpoint_blob"] > 0
        assert memory["read_logits"] + memory["checkpoint_blob"] < storage["bytes"]
    else:
        assert 0 < storage["raster_bytes_per_token"] < storage["bytes_per_token"]
        assert not any(memory.values())
        encodings = storage["encodings"]
        assert 0 < encodings["firing_fraction"] < 1
        assert encodings["bytes"]["bool_blosc_bitshuffle"] < encodings["bytes"]["raw_bool"]
    replay = result["replay"]
    assert replay["verify_max_abs_diff"] == 0.0
    assert replay["torch_vs_numba_max_abs_diff"] <= 1e-6
    assert replay["open_loop_tokens_per_s"] > 0 and replay["closed_loop_tokens_per_s"] > 0
