"""`plastic bench train`: training tokens/s and peak memory of a preset on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plastic.cli.app import bench_app, emit_result


@bench_app.command("train")
def bench_train_cmd(
    preset: Annotated[str, typer.Option("--preset", help="Model preset: tiny or nord-144m.")] = (
        "tiny"
    ),
    device: Annotated[str, typer.Option("--device", help="cpu or cuda (bf16 autocast).")] = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    seq_len: Annotated[int, typer.Option("--seq-len", min=2)] = 256,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Timed steps.")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed steps first.")] = 2,
    grad_checkpointing: Annotated[
        bool | None,
        typer.Option("--grad-checkpointing/--no-grad-checkpointing", help="Default: on with cuda."),
    ] = None,
    compile_: Annotated[
        bool, typer.Option("--compile/--no-compile", help="torch.compile the LIF loops.")
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", help="Also write the JSON result to this file.")
    ] = None,
) -> None:
    """Tokens/s of `plastic train`'s step and peak memory, beside the footprint's estimate."""
    import torch
    from plastic_benchmarks.train import TrainBenchConfig, run_train_bench
    from rich.console import Console

    from plastic.cli.device import parse_device
    from plastic.models.config import preset as make_preset

    make_preset(preset)  # an unknown preset is one line before anything is built
    dev = parse_device(device, rules=False)
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = TrainBenchConfig(
        preset=preset,
        device=dev.torch_device,
        batch_size=batch_size,
        seq_len=seq_len,
        steps=steps,
        warmup=warmup,
        grad_checkpointing=grad_checkpointing,
        compile=compile_,
    )
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(
        f"bench train: {preset} on {dev.torch_device}, batch {batch_size} x {seq_len}, "
        f"{warmup} + {steps} steps"
    )
    result = run_train_bench(cfg)
    if emit_result(result, output, json_out):
        return
    gib = 2.0**30
    peak = result.get("peak_memory_allocated_bytes", result.get("peak_rss_bytes"))
    what = "allocated" if "peak_memory_allocated_bytes" in result else "resident (process)"
    est = result["footprint_estimate"]["total_bytes_estimate"] / gib
    out = Console(highlight=False, soft_wrap=True)
    out.print(
        f"{result['parameters']:,} parameters; {result['tokens_per_s']:,.1f} tokens/s "
        f"({result['dtype']}, checkpointing {'on' if result['grad_checkpointing'] else 'off'}); "
        f"peak memory {peak / gib:.2f} GiB {what}, footprint estimate {est:.2f} GiB"
    )
