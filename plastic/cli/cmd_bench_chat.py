"""`plastic bench chat`: generation tokens/s at two depths of one conversation, and memory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plastic.cli.app import bench_app, emit_result
from plastic.cli.cmd_chat import MODEL_HELP
from plastic.cli.threads import ThreadsOption, use_threads

if TYPE_CHECKING:
    from rich.console import Console

    from plastic.cli.device import Device
    from plastic.models.spiking_lm import SpikingLM


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
    learn: Annotated[
        bool,
        typer.Option(
            "--learn",
            help="Instead: whole scripted turns of `chat --learn` over `chat` (what the "
            "user waits for), and tokens/s with adapters learning vs attached but not "
            "learning (and the bare backbone), interleaved in one run.",
        ),
    ] = False,
    rule: Annotated[
        str,
        typer.Option(
            "--rule", help="With --learn: the new adapter's rule, as `chat --learn --rule`."
        ),
    ] = "detector_stdp",
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the JSON result to this file.")
    ] = None,
    fast_path: Annotated[
        bool,
        typer.Option(
            "--fast-path/--no-fast-path",
            help="Generate through the fused single-token path (default) or the generic one.",
        ),
    ] = True,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="cpu, or cuda: the backbone on the GPU, with --learn the adapter's rule too "
            "(readout/residual rules; the context memory learns on the CPU).",
        ),
    ] = "cpu",
    threads: ThreadsOption = 1,
) -> None:
    """Tokens/s at position ~100 and ~2000 of one chat (ratio ~1: constant cost), peak memory,
    and tokens/s against the rate of the model's bare arithmetic (>= 0.5 wanted).

    With --learn: the cost of learning. Whole turns of a scripted 5-turn chat (20 new
    tokens a reply), `chat --learn` ÷ `chat` (<= 1.2 wanted), and tokens/s learning ÷ not
    learning (>= 0.9 wanted).
    """
    from rich.console import Console

    from plastic.models.checkpoint import resolve_model

    if far <= near:
        raise typer.BadParameter(f"must be greater than --near ({near})", param_hint="--far")
    from plastic.cli.device import parse_device

    dev = parse_device(device)
    use_threads(threads)
    lm = resolve_model(model).to(dev.torch_device)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if learn:
        _bench_learn(lm, tokens, repeats, seed, rule, check, json_out, output, err, dev)
        return
    from plastic_benchmarks.chat import ChatBenchConfig, run_chat_bench

    path = "fast" if fast_path else "generic"
    err.print(
        f"bench chat: {lm.config.name}, positions {near} and {far}, {tokens} tokens x {repeats}, "
        f"{path} path"
    )
    cfg = ChatBenchConfig(
        near=near, far=far, tokens=tokens, repeats=repeats, seed=seed, fast_path=fast_path
    )
    result = run_chat_bench(lm, cfg)
    if not emit_result(result, output, json_out):
        out = Console(highlight=False, soft_wrap=True)
        for row in result["positions"]:
            rss = f"{row['rss_mb']:.0f} MiB RSS" if row["rss_mb"] is not None else "RSS n/a"
            out.print(
                f"position {row['position']:>6}: {row['tokens_per_s']:8.1f} tokens/s  ({rss})"
            )
        verdict = "[green]constant cost[/]" if result["constant_cost"] else "[red]slower deep in[/]"
        out.print(f"ratio {result['ratio']:.3f} (>= {result['min_ratio']} wanted): {verdict}")
        out.print(f"peak memory {result['peak_rss_mb']:.0f} MiB (process peak RSS)")
        ok = result["ratio_to_bare"] >= result["min_ratio_to_bare"]
        verdict = "[green]ok[/]" if ok else "[red]below[/]"
        out.print(
            f"bare arithmetic {result['bare_ms']:.3f} ms/token ({result['timesteps']} steps of "
            f"every weight matrix, batch 1, plain torch) = {result['bare_tokens_per_s']:.1f} "
            f"tokens/s; ratio {result['ratio_to_bare']:.3f} "
            f"(>= {result['min_ratio_to_bare']} wanted): {verdict}"
        )
        out.print(
            f"each product once {result['bare_once_ms']:.3f} ms/token; "
            f"ratio {result['ratio_to_bare_once']:.3f}"
        )
        out.print(
            f"fastest runs only: ratio {result['ratio_to_bare_best']:.3f}, "
            f"each product once {result['ratio_to_bare_once_best']:.3f}"
        )
    if check and not result["constant_cost"]:
        err.print(f"[red]check failed:[/] ratio {result['ratio']:.3f} < {result['min_ratio']}")
        raise typer.Exit(1)


def _bench_learn(
    lm: SpikingLM,
    tokens: int,
    repeats: int,
    seed: int,
    rule: str,
    check: bool,
    json_out: bool,
    output: Path | None,
    err: Console,
    device: Device,
) -> None:
    """`plastic bench chat --learn`: see plastic_benchmarks.chat_turns and .chat_learn."""
    from plastic_benchmarks.chat_learn import LearnBenchConfig, run_learn_bench
    from plastic_benchmarks.chat_turns import TurnBenchConfig, run_turn_bench
    from rich.console import Console

    from plastic.cli.device import adapter_settings, memory_note
    from plastic.plasticity.chat_learning import adapter_config

    settings = adapter_settings(device, rule)
    note = memory_note(device, rule)
    if note:
        err.print(f"[dim]{note}[/dim]")
    turn_cfg = TurnBenchConfig(
        repeats=max(1, min(repeats, 5)), seed=seed, rule=rule, settings=tuple(settings.items())
    )
    err.print(
        f"bench chat --learn: {lm.config.name}, rule {rule}: {len(turn_cfg.turns)} scripted "
        f"turns x {turn_cfg.max_new_tokens} new tokens, chat and chat --learn interleaved "
        f"x {turn_cfg.repeats}"
    )
    with err.status("timing whole turns (the first runs load the kernels)"):
        turns = run_turn_bench(lm, turn_cfg)
    cfg = LearnBenchConfig(
        tokens=tokens,
        repeats=repeats,
        seed=seed,
        adapter=adapter_config(rule, None, settings=settings),
    )
    err.print(f"tokens/s: {tokens} tokens x {repeats}")
    with err.status("timing tokens/s"):
        result = run_learn_bench(lm, cfg)
    result["turns"] = turns
    result["ok"] = bool(result["ok"] and turns["ok"])
    if not emit_result(result, output, json_out):
        out = Console(highlight=False, soft_wrap=True)
        verdict = "[green]ok[/]" if turns["ok"] else f"[red]above {turns['max_ratio']}[/]"
        best = turns["best_seconds"]
        out.print(
            f"whole turns   {'chat':>9} {'--learn':>9}  ratio  (ratio of medians)\n"
            f"{'seconds':<13} {best['chat']:9.2f} {best['learn']:9.2f}  "
            f"{turns['ratio_best']:.3f}  ({turns['ratio_median']:.3f}) {verdict}"
        )
        out.print(
            f"ratio = chat --learn / chat, {turns['turns']} turns of {turns['max_new_tokens']} "
            "new tokens, fastest of the interleaved runs of each"
        )
        out.print(
            f"{'best tokens/s':<13} {'backbone':>9} {'frozen':>9} {'learning':>9}  "
            "ratio  (ratio of medians)"
        )
        for mode in ("generate", "observe"):
            row = result[mode]
            best = row["best_tokens_per_s"]
            verdict = "[green]ok[/]" if row["ok"] else "[red]below 0.9[/]"
            out.print(
                f"{mode:<13} {best['backbone']:9.1f} {best['frozen']:9.1f} "
                f"{best['learning']:9.1f}  {row['ratio_best']:.3f}  ({row['ratio']:.3f}) {verdict}"
            )
        out.print(
            "ratio = learning / frozen (adapters attached, not learning), fastest of the "
            "interleaved runs of each (load only slows a run)"
        )
    if check and not result["ok"]:
        err.print(
            f"[red]check failed:[/] whole-turn ratio above {turns['max_ratio']} or a "
            f"learning/frozen tokens/s ratio below {result['min_ratio']}"
        )
        raise typer.Exit(1)
