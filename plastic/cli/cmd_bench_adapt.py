"""`plastic bench adapt`: the prequential adaptation benchmark (frozen, the default memory,
its stdp and sham controls, the readout adapter, the counting and compression anchors, and
on request ppmd, dyneval_adapter and dyneval_full): cumulative bits/byte, forgetting, cost
and state size per stream."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from plastic.cli.app import bench_app, json_line
from plastic.cli.cmd_chat import MODEL_HELP
from plastic.errors import ConfigError

# = plastic_benchmarks.adapt.DEFAULT_SYSTEMS (a test keeps them equal; importing it here
# would load torch for `--help`)
DEFAULT_SYSTEMS = "frozen,memory,stdp,sham,readout,ngram_mix,bzip2,xz"


def _read(path: Path, max_bytes: int, what: str, offset: int = 0) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not data:
        raise ConfigError(f"{what} {path} has no bytes to read (offset {offset})")
    return data


@bench_app.command("adapt")
def bench_adapt_cmd(
    stream: Annotated[
        list[Path], typer.Option("--stream", help="Text file read as a stream (repeatable).")
    ],
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Bytes read from each stream.")
    ] = 100_000,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Start reading each stream here (held-out).")
    ] = 0,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds of seeded systems.")] = 3,
    systems: Annotated[
        str,
        typer.Option(
            "--systems",
            help="Comma-separated, of frozen,memory,stdp,sham,readout,dyneval_adapter,dyneval_full,"
            "ngram_mix,ppmd,bzip2,xz (ppmd needs the bench extra: pip install "
            "'plastic-snn[bench]').",
        ),
    ] = DEFAULT_SYSTEMS,
    adapter_config: Annotated[
        Path | None,
        typer.Option(
            "--adapter-config",
            help="adapter_config.json of the memory (or of the readout system).",
        ),
    ] = None,
    forget: Annotated[
        Path | None,
        typer.Option(
            "--forget",
            help="Text like the backbone's training text, scored before and after each "
            "system learns: forgetting (optional; left out, it is not measured).",
        ),
    ] = None,
    forget_bytes: Annotated[
        int, typer.Option("--forget-bytes", min=1, help="Bytes of it scored.")
    ] = 50_000,
    dyneval_lr: Annotated[
        float, typer.Option("--dyneval-lr", help="dyneval_adapter's Adam learning rate.")
    ] = 0.03,
    dyneval_full_lr: Annotated[
        float | None,
        typer.Option(
            "--dyneval-full-lr", help="dyneval_full's Adam learning rate [default: 3e-4]."
        ),
    ] = None,
    cache: Annotated[
        Path, typer.Option("--cache", help="Where backbone passes are stored (reused).")
    ] = Path("runs/adapt-cache"),
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads.")] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print markdown tables (docs/results.md).")
    ] = False,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="cpu, or cuda: the backbone on the GPU and the readout adapter's rule "
            "(the context memory learns on the CPU).",
        ),
    ] = "cpu",
) -> None:
    """Prequential bits/byte of frozen vs plastic adapters vs dynamic evaluation, per stream."""
    import torch
    from plastic_benchmarks.adapt import (
        AdaptBenchConfig,
        DynevalConfig,
        DynevalFullConfig,
        check_systems,
        run_adapt_bench,
    )
    from rich.console import Console

    from plastic.cli.device import adapter_settings, parse_device
    from plastic.models.checkpoint import resolve_model
    from plastic.plasticity.config import AdapterConfig, memory_adapter_config
    from plastic.plasticity.config_v1 import upgrade_config

    dev = parse_device(device)
    chosen = tuple(s.strip() for s in systems.split(",") if s.strip())
    try:
        check_systems(chosen)
    except ConfigError as exc:
        raise ConfigError(f"--systems: {exc}") from None
    adapter, readout = memory_adapter_config(), AdapterConfig()
    if adapter_config is not None:
        try:
            given = AdapterConfig.from_dict(upgrade_config(json.loads(adapter_config.read_text())))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read adapter config {adapter_config}: {exc}") from None
        if given.kind == "memory":
            adapter = given
        elif given.kind == "readout":
            readout = given
        else:
            raise ConfigError("--adapter-config: a memory (or readout) adapter, not residual")
    streams = {str(p): _read(p, max_bytes, "stream", offset) for p in stream}
    forget_data = None
    if forget is not None and str(forget).lower() != "none":
        forget_data = _read(forget, forget_bytes, "forgetting text")
    if adapter_settings(dev, readout.rule):  # the readout's rule runs on the CUDA kernels
        readout = dataclasses.replace(readout, backend="cuda")
    torch.set_num_threads(threads)
    lm = resolve_model(model).to(dev.torch_device)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    cfg = AdaptBenchConfig(
        max_bytes=max_bytes,
        seeds=seeds,
        systems=chosen,
        adapter=adapter,
        readout=readout,
        dyneval=DynevalConfig(lr=dyneval_lr),
        dyneval_full=DynevalFullConfig(
            **({} if dyneval_full_lr is None else {"lr": dyneval_full_lr})
        ),
        forget_bytes=forget_bytes,
    )
    result = run_adapt_bench(
        lm, streams, cfg, forget_data=forget_data, cache_dir=cache, log=err.print
    )
    result["offset"] = offset
    if json_out:
        sys.stdout.write(json_line(result))
        return
    if markdown:
        from plastic_benchmarks.adapt import to_markdown

        sys.stdout.write(to_markdown(result) + "\n")
        return
    out = Console(highlight=False, soft_wrap=True)
    for name, res in result["streams"].items():
        out.print(f"[bold]{name}[/] ({res['bytes']} bytes from offset {offset})")
        out.print(
            f"  {'system':<16}{'bits/byte':>18}{'vs frozen':>11}{'of dyneval':>11}"
            f"{'forgetting':>12}{'cost':>7}{'cost/par':>9}{'state':>11}"
        )
        for system, e in res["systems"].items():
            bpb = e["bits_per_byte"]
            forget_s = f"{e['forgetting']['mean']:+.4f}" if "forgetting" in e else "-"
            frac = e.get("dyneval_fraction")
            frac_s = f"{frac:.0%}" if frac is not None and frac == frac else "-"
            state_s = f"{e['state_bytes'] / 2**20:.1f} MiB" if "state_bytes" in e else "-"
            out.print(
                f"  {system:<16}{bpb['mean']:>10.4f} ± {bpb['std']:.4f}"
                f"{e['relative_change']['mean']:>+11.2%}{frac_s:>11}{forget_s:>12}"
                f"{e['cost']:>7.3g}{e['cost_vs_parallel']:>9.3g}{state_s:>11}"
            )
        targets = ", ".join(
            f"{k}={'ok' if v else ('-' if v is None else 'MISS')}"
            for k, v in res["targets"].items()
            if k != "margins"
        )
        margins = ", ".join(
            f"{v:+.4f} vs {k}" for k, v in res["targets"].get("margins", {}).items()
        )
        if targets:
            out.print(f"  memory targets: {targets}" + (f"; margins {margins}" if margins else ""))
