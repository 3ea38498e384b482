"""`plastic eval`: bits per byte of a file under the model, with spike rates per site."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from plastic.cli.app import app, json_line
from plastic.cli.cmd_chat import MODEL_HELP
from plastic.cli.device import DEVICE_HELP, parse_device
from plastic.errors import ConfigError


def read_data(path: Path, max_bytes: int | None) -> bytes:
    """The first `max_bytes` bytes of `path` (all if None); missing or empty is a ConfigError."""
    if not path.exists():
        raise ConfigError(f"--data {path}: no such file")
    if not path.is_file():
        raise ConfigError(f"--data {path}: not a file")
    try:
        with path.open("rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes)
    except OSError as exc:
        raise ConfigError(f"--data {path}: {exc.strerror or exc}") from None
    if not data:
        raise ConfigError(f"--data {path}: the file is empty")
    return data


@app.command("eval")
def eval_cmd(
    data: Annotated[Path, typer.Option("--data", help="File to score (any bytes).")],
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", min=1, help="Score only the first N bytes.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "cpu",
) -> None:
    """Print bits per byte of --data (lower is better), the spike rate of every site and the
    sparsity; a progress bar runs on stderr while it reads."""
    from rich.console import Console

    from plastic.cli.chat.render import rich_progress
    from plastic.models.checkpoint import model_hash, resolve_model
    from plastic.models.evaluate import stream_bits

    dev = parse_device(device, rules=False)  # eval runs no learning rule
    payload = read_data(data, max_bytes)
    lm = resolve_model(model).to(dev.torch_device)
    err = Console(stderr=True, soft_wrap=True)
    t0 = time.perf_counter()
    done = 0

    with rich_progress(err, "eval", len(payload)) as advance:

        def on_chunk(n: int) -> None:
            nonlocal done
            done += n
            advance(done, len(payload))

        bits, rates = stream_bits(lm, payload, progress=on_chunk)
    seconds = time.perf_counter() - t0
    bpb = bits / len(payload)
    sparsity = 1.0 - sum(rates.values()) / len(rates) if rates else None
    if json_out:
        result = {
            "bits_per_byte": bpb,
            "bytes": len(payload),
            "bits": bits,
            "sparsity": sparsity,
            "rates": rates,
            "seconds": seconds,
            "bytes_per_s": len(payload) / seconds if seconds > 0 else None,
            "data": str(data),
            "model": getattr(lm, "content_hash", None) or model_hash(lm),
            "device": dev.torch_device,
        }
        sys.stdout.write(json_line(result))
        return
    out = Console(highlight=False, soft_wrap=True)
    sparsity_text = f", sparsity {sparsity:.1%}" if sparsity is not None else ""
    out.print(f"{bpb:.4f} bits/byte over {len(payload):,} bytes{sparsity_text}")
    if rates:
        width = max(len(name) for name in rates)
        out.print(f"{'site':<{width}}  {'rate':>7}  {'sparsity':>8}")
        for name, rate in rates.items():
            out.print(f"{name:<{width}}  {rate:>7.2%}  {1.0 - rate:>8.1%}")
    out.print(
        f"{seconds:.1f} s, {len(payload) / seconds:,.0f} bytes/s"
        if seconds > 0
        else f"{seconds:.1f} s"
    )
