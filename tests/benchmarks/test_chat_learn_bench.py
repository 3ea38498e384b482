"""The learning benchmark runs and reports both paths (the speed itself is measured, not tested)."""

from __future__ import annotations

from plastic_benchmarks.chat_learn import LearnBenchConfig, run_learn_bench

from tests.plasticity.conftest import make_backbone


def test_learn_bench_reports_tokens_per_second_of_every_mode() -> None:
    result = run_learn_bench(make_backbone(), LearnBenchConfig(tokens=6, repeats=1, prefill=10))
    for mode in ("generate", "observe"):
        speeds = result[mode]["tokens_per_s"]
        assert set(speeds) == {"backbone", "frozen", "learning"}
        assert all(v > 0 for v in speeds.values())
        assert result[mode]["ratio"] > 0
    assert result["min_ratio"] == 0.9


def test_turn_bench_times_every_turn_of_both_chats() -> None:
    from plastic_benchmarks.chat_turns import TurnBenchConfig, run_turn_bench

    cfg = TurnBenchConfig(turns=("hello there", "and again"), max_new_tokens=3, repeats=1)
    result = run_turn_bench(make_backbone(), cfg)
    for how in ("chat", "learn"):
        (run,) = result["runs_turn_seconds"][how]
        assert len(run) == 2 and all(s > 0 for s in run)
        assert result["best_seconds"][how] == sum(run)
    assert result["ratio_best"] == result["best_seconds"]["learn"] / result["best_seconds"]["chat"]
    assert result["ok"] == (result["ratio_best"] <= result["max_ratio"])
