"""`plastic bench adapt` and `plastic_benchmarks.adapt`: the report's figures at tiny sizes.

Speed is never asserted (the machine may be loaded); only what the figures mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from plastic_benchmarks.adapt import (
    AdaptBenchConfig,
    DynevalConfig,
    DynevalFullConfig,
    ShuffledTeacher,
    dyneval_full,
    run_stream,
    to_markdown,
)
from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.main import main
from plastic.errors import ConfigError
from plastic.models.spiking_lm import SpikingLM

STREAM = (b"To be, or not to be, that is the question. " * 8)[:320]
FORGET = b"It was a bright cold day in April, and the clocks were striking thirteen."


def test_stream_report(small_model: SpikingLM, tmp_path: Path) -> None:
    systems_run = (
        "frozen",
        "memory",
        "stdp",
        "sham",
        "readout",
        "dyneval_adapter",
        "ngram_mix",
        "bzip2",
        "xz",
    )
    cfg = AdaptBenchConfig(
        seeds=2, cost_bytes=8, dyneval=DynevalConfig(segment=32), systems=systems_run
    )
    res = run_stream(small_model, STREAM, cfg, forget_data=FORGET, cache_dir=tmp_path)
    systems = res["systems"]
    assert list(systems) == list(systems_run)
    frozen = systems["frozen"]
    assert frozen["bits_per_byte"]["mean"] == pytest.approx(res["frozen_bits_per_byte"])
    assert frozen["relative_change"]["mean"] == 0.0 and frozen["forgetting"]["mean"] == 0.0
    for name in ("frozen", "memory", "stdp", "readout"):
        assert systems[name]["deterministic"] and systems[name]["runs"] == 1
        assert systems[name]["bits_per_byte"]["std"] == 0.0
    for name in ("sham", "dyneval_adapter"):
        assert not systems[name]["deterministic"] and systems[name]["runs"] == 2
    assert systems["sham"]["bits_per_byte"]["std"] > 0  # the shuffle depends on the seed
    # a line repeated 8 times: the memory learns it; without teaching less; shuffled worse
    memory = systems["memory"]["bits_per_byte"]["mean"]
    assert memory < 0.6 * res["frozen_bits_per_byte"]
    assert systems["stdp"]["bits_per_byte"]["mean"] > memory
    assert systems["sham"]["bits_per_byte"]["mean"] > memory
    assert systems["memory"]["state_bytes"] > 0
    assert systems["dyneval_adapter"]["dyneval_fraction"] == pytest.approx(1.0)
    gain = res["frozen_bits_per_byte"] - systems["readout"]["bits_per_byte"]["mean"]
    dyn = res["frozen_bits_per_byte"] - systems["dyneval_adapter"]["bits_per_byte"]["mean"]
    if dyn > 0:
        assert systems["readout"]["dyneval_fraction"] == pytest.approx(gain / dyn)
    for name, entry in systems.items():
        if name in ("bzip2", "xz"):  # their own time only: no backbone under them
            assert entry["cost_vs_parallel"] > 0 and entry["adapter_s_per_byte"] > 0
        else:
            assert entry["cost"] >= 1.0 and entry["cost_vs_parallel"] >= 1.0
    assert "forgetting" in systems["ngram_mix"] and "forgetting" not in systems["xz"]
    assert systems["ngram_mix"]["state_bytes"] > 0 and "state_bytes" not in systems["readout"]
    table = to_markdown({"streams": {"stream.txt": res}})
    assert table.count("\n| ") == 1 + len(systems) and "| sham |" in table
    assert " MiB |" in table.split("| ngram_mix |")[1].splitlines()[0]
    assert set(res["targets"]) == {
        "beats_ppmd",
        "beats_ngram_mix",
        "sham_worse",
        "stdp_worse",
        "forgetting",
        "cost_vs_parallel",
        "state_at_1mb",
        "margins",
    }
    assert res["targets"]["state_at_1mb"] is None  # a 320-byte stream says nothing of 1 MB
    assert res["targets"]["beats_ppmd"] is None and "ngram_mix" in res["targets"]["margins"]


def test_dyneval_full_scores_before_it_learns_and_learns(small_model: SpikingLM) -> None:
    """lr 0: exactly the frozen backbone read in segments; lr > 0: a repeated line is learnt,
    the shipped model is untouched, and the adapted weights cost bits on other text."""
    before = [p.detach().clone() for p in small_model.parameters()]
    still = dyneval_full(small_model, STREAM, DynevalFullConfig(lr=0.0, segment=32), FORGET)
    frozen = run_stream(
        small_model,
        STREAM,
        AdaptBenchConfig(systems=("frozen",), cost_bytes=4),
        forget_data=FORGET,
        cache_dir=None,
    )
    assert still["bits"].mean() == pytest.approx(frozen["frozen_bits_per_byte"], abs=1e-4)
    assert still["forget_bits"].mean() == pytest.approx(
        frozen["frozen_forget_bits_per_byte"], abs=1e-4
    )
    learnt = dyneval_full(small_model, STREAM, DynevalFullConfig(lr=3e-3, segment=32), FORGET)
    assert learnt["bits"][:32].tolist() == still["bits"][:32].tolist()  # scored before a step
    half = len(STREAM) // 2
    assert learnt["bits"][half:].mean() < still["bits"][half:].mean() - 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, small_model.parameters(), strict=True))


def test_dyneval_full_is_opt_in_and_reported(small_model: SpikingLM) -> None:
    cfg = AdaptBenchConfig(
        systems=("frozen", "dyneval_full"),
        cost_bytes=4,
        dyneval_full=DynevalFullConfig(lr=3e-3),
    )
    assert "dyneval_full" not in AdaptBenchConfig().systems
    res = run_stream(small_model, STREAM, cfg, forget_data=FORGET, cache_dir=None)
    entry = res["systems"]["dyneval_full"]
    assert entry["deterministic"] and entry["runs"] == 1
    assert entry["bits_per_byte"]["mean"] < res["frozen_bits_per_byte"]
    assert entry["forgetting"]["mean"] != 0.0
    assert entry["cost_vs_parallel"] > 0  # its own backbone: not 1 + something


def test_shuffled_teacher_ignores_the_tokens() -> None:
    """The sham's teaching bytes: the stream's own bytes in a seeded order, then none."""
    teacher = ShuffledTeacher(b"abcdef", seed=3)
    first = teacher(np.array([1, 2, 3, 4]))
    rest = teacher(np.array([9, 9, 9, 9]))
    assert sorted([*first, *rest[:2]]) == sorted(b"abcdef")
    assert list(rest[2:]) == [256, 256]
    again = ShuffledTeacher(b"abcdef", seed=3)(np.zeros(4, np.int64))
    np.testing.assert_array_equal(again, first)


def test_cli_json_and_cache(small_model_dir: Path, tmp_path: Path) -> None:
    stream = tmp_path / "stream.txt"
    stream.write_bytes(STREAM)
    forget = tmp_path / "forget.txt"
    forget.write_bytes(FORGET)
    args = [
        "bench",
        "adapt",
        "--model",
        str(small_model_dir),
        "--stream",
        str(stream),
        "--max-bytes",
        "200",
        "--seeds",
        "2",
        "--systems",
        "frozen,memory,sham",
        "--forget",
        str(forget),
        "--cache",
        str(tmp_path / "cache"),
        "--json",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout.strip().splitlines()[-1])
    res = report["streams"][str(stream)]
    assert res["bytes"] == 200 and list(res["systems"]) == ["frozen", "memory", "sham"]
    assert report["seeds"] == 2 and report["forget_bytes"] > 0
    assert any((tmp_path / "cache").iterdir())  # the backbone pass was stored
    again = CliRunner().invoke(app, args)
    res2 = json.loads(again.stdout.strip().splitlines()[-1])["streams"][str(stream)]
    for name in res["systems"]:
        assert np.isclose(
            res2["systems"][name]["bits_per_byte"]["mean"],
            res["systems"][name]["bits_per_byte"]["mean"],
        )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--systems", "frozen,magic"], "unknown system(s) magic"),
        (["--forget", "/nonexistent/forget.txt"], "cannot read forgetting text"),
        (["--stream", "/nonexistent/stream.txt"], "cannot read stream"),
    ],
)
def test_cli_bad_input_is_one_line(
    small_model_dir: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    stream = tmp_path / "stream.txt"
    stream.write_bytes(STREAM)
    argv = ["bench", "adapt", "--model", str(small_model_dir), "--stream", str(stream), *extra]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert info.value.code == 1 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("error:") and message in lines[0]


def test_runner_table() -> None:
    """Each system is one entry; the CLI's default list is the table's; unknown is an error."""
    from plastic_benchmarks import adapt

    from plastic.cli import cmd_bench_adapt

    assert tuple(adapt.RUNNERS) == adapt.SYSTEMS
    assert ",".join(adapt.DEFAULT_SYSTEMS) == cmd_bench_adapt.DEFAULT_SYSTEMS
    assert "ppmd" not in adapt.DEFAULT_SYSTEMS  # needs the optional bench extra
    assert adapt._with_needs(["sham"]) == ["frozen", "sham"]
    for bad in (["frozen", "magic"], []):
        with pytest.raises(ConfigError) as info:
            adapt.check_systems(bad)
        assert "\n" not in str(info.value) and "choose from frozen, memory" in str(info.value)
    with pytest.raises(ConfigError, match="unknown system\\(s\\) magic"):
        run_stream(
            SpikingLM.__new__(SpikingLM),
            STREAM,
            AdaptBenchConfig(systems=("magic",)),
            forget_data=None,
            cache_dir=None,
        )


def test_cli_json_has_the_anchors(small_model_dir: Path, tmp_path: Path) -> None:
    stream = tmp_path / "stream.txt"
    stream.write_bytes(STREAM)
    args = ["bench", "adapt", "--model", str(small_model_dir), "--stream", str(stream)]
    args += ["--systems", "frozen,ngram_mix,ppmd,bzip2,xz", "--forget", "none"]
    args += ["--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout.strip().splitlines()[-1])["streams"][str(stream)]
    systems = res["systems"]
    assert list(systems) == ["frozen", "ngram_mix", "ppmd", "bzip2", "xz"]
    # a line repeated 8 times: every anchor learns it, far below 8 bits/byte
    for name in ("ngram_mix", "ppmd", "bzip2", "xz"):
        assert 0 < systems[name]["bits_per_byte"]["mean"] < 4, name
    assert systems["ngram_mix"]["bits_per_byte"]["mean"] < res["frozen_bits_per_byte"]
    assert systems["ppmd"]["detail"]["max_order"] in (6, 8, 16)
    assert "forgetting" not in systems["ngram_mix"]  # --forget none
    table = CliRunner().invoke(app, [*args, "--offset", "8", "--markdown"])
    assert table.exit_code == 0 and "| ppmd |" in table.stdout and "| xz |" in table.stdout
    assert "bytes from offset 8;" in table.stdout and "(memory not run)" in table.stdout
