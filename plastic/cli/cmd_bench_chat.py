"""`plastic bench chat`: generation tokens/s at two depths of one conversation, and memory."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from plastic.cli.app import bench_app
from plastic.cli.cmd_chat import MODEL_HELP


@bench_app.command("chat")
def bench_chat_cmd(
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    near: Annotated[int, typer.Option("--near", min=1, help="First position measured.")] = 100,
    far: Annotated[int, typer.Option("--far", min=2, help="Second position measured.")] = 2000,
    tokens: Annotated[
        int, typer.Option("--tokens", min=1, help="Tokens generated per timed run.")
    ] = 200,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed runs per position (median).")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler.")] = 0,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the far/near ratio is below 0.9.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Tokens/s at position ~100 and ~2000 of one chat (ratio ~1: constant cost), peak memory."""
    from plastic_benchmarks.chat import ChatBenchConfig, run_chat_bench
    from rich.console import Console

    from plastic.models.checkpoint import resolve_model

    if far <= near:
        raise typer.BadParameter(f"must be greater than --near ({near})", param_hint="--far")
    lm = resolve_model(model)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(
        f"bench chat: {lm.config.name}, positions {near} and {far}, {tokens} tokens x {repeats}"
    )
    cfg = ChatBenchConfig(near=near, far=far, tokens=tokens, repeats=repeats, seed=seed)
    result = run_chat_bench(lm, cfg)
    if json_out:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out = Console(highlight=False, soft_wrap=True)
        for row in result["positions"]:
            rss = f"{row['rss_mb']:.0f} MiB RSS" if row["rss_mb"] is not None else "RSS n/a"
            out.print(
                f"position {row['position']:>6}: {row['tokens_per_s']:8.1f} tokens/s  ({rss})"
            )
        verdict = "[green]constant cost[/]" if result["constant_cost"] else "[red]slower deep in[/]"
        out.print(f"ratio {result['ratio']:.3f} (>= {result['min_ratio']} wanted): {verdict}")
        out.print(f"peak memory {result['peak_rss_mb']:.0f} MiB (process peak RSS)")
    if check and not result["constant_cost"]:
        err.print(f"[red]check failed:[/] ratio {result['ratio']:.3f} < {result['min_ratio']}")
        raise typer.Exit(1)
