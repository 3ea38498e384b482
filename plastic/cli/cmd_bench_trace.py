"""`plastic bench trace`: recording overhead on chat tokens/s, bytes per token, replay speed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plastic.cli.app import bench_app, emit_result
from plastic.cli.cmd_chat import MODEL_HELP
from plastic.cli.threads import ThreadsOption, use_threads


@bench_app.command("trace")
def bench_trace_cmd(
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    turns: Annotated[int, typer.Option("--turns", min=1, help="Turns per timed chat.")] = 4,
    reply_tokens: Annotated[
        int, typer.Option("--reply-tokens", min=1, help="Tokens generated per reply.")
    ] = 48,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs (median).")] = 3,
    rule: Annotated[
        str,
        typer.Option(
            "--rule",
            help="detector_stdp: the context memory (the chat's default); else a readout rule.",
        ),
    ] = "detector_stdp",
    threads: ThreadsOption = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the JSON result to this file.")
    ] = None,
) -> None:
    """Recording overhead (tokens/s recording ÷ not, same run; >= 0.95 wanted), bytes per
    token on disk (and three spike encodings compared), replay tokens/s open and closed loop."""
    from plastic_benchmarks.trace import TraceBenchConfig, run_trace_bench
    from rich.console import Console

    from plastic.models.checkpoint import resolve_model

    use_threads(threads)
    lm = resolve_model(model)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(f"bench trace: {lm.config.name}, {turns} turns x {reply_tokens} tokens x {repeats}")
    cfg = TraceBenchConfig(turns=turns, reply_tokens=reply_tokens, repeats=repeats, rule=rule)
    result = run_trace_bench(lm, cfg)
    if emit_result(result, output, json_out):
        return
    out = Console(highlight=False, soft_wrap=True)
    o, s, r = result["recording_overhead"], result["storage"], result["replay"]
    out.print(
        f"chat tokens/s: {o['tokens_per_s']['plain']:.1f} plain, "
        f"{o['tokens_per_s']['recording']:.1f} recording: ratio {o['ratio']:.3f} "
        f"(cpu {o['ratio_cpu']:.3f}; >= {o['min_ratio']} wanted); commit at turn end "
        f"{o['turn_commit_ms_median']:.0f} ms median, {o['turn_commit_ms_max']:.0f} ms max"
    )
    out.print(
        f"ms per turn: {o['turn_ms']['plain']:.1f} plain, {o['turn_ms']['recording']:.1f} "
        f"recording ({o['tokens_per_chat'] / cfg.turns:.0f} tokens a turn)"
    )
    out.print(
        f"disk: {s['bytes_per_token']:.1f} bytes/token in all ({s['bytes_per_turn']:,.0f} "
        f"bytes/turn), spike rasters {s['raster_bytes_per_token']:.1f} bytes/token"
    )
    m = s["memory_bytes"]
    if any(m.values()):
        out.print(
            f"memory: logits rows {m['read_logits'] / s['tokens']:.1f} bytes/token, tokens "
            f"{m['read_id'] / s['tokens']:.1f}, saved states {m['state_blob']:,} bytes, "
            f"checkpoints {m['checkpoint_blob']:,} bytes ({s['checkpoints']} checkpoints)"
        )
    enc = s["encodings"]
    parts = ", ".join(f"{k} {v:.1f}" for k, v in enc["bytes_per_token"].items())
    out.print(f"spike encodings (bytes/token, firing {enc['firing_fraction']:.2%}): {parts}")
    out.print(
        f"replay tokens/s: open loop {r['open_loop_tokens_per_s']:.0f} (torch "
        f"{r['open_loop_torch_tokens_per_s']:.0f}), closed loop {r['closed_loop_tokens_per_s']:.1f}"
    )
    out.print(
        f"verify max abs diff {r['verify_max_abs_diff']}, torch vs numba "
        f"{r['torch_vs_numba_max_abs_diff']:.3g}"
    )
