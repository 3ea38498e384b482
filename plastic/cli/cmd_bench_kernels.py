"""`plastic bench kernels`: learning-rule kernel throughput vs the torch reference and the
dense memory-bandwidth bound, measured in one run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from plastic.cli.app import bench_app
from plastic.errors import ConfigError


def _numbers(text: str, kind: type, what: str) -> tuple:
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{what} must be a comma-separated list of numbers, got {text!r}"
        ) from exc
    if not values:
        raise ConfigError(f"{what} must not be empty")
    return values


def _backends(text: str) -> tuple[str, ...]:
    """The --backends list; cuda without a GPU is one line, before any timing."""
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(chosen) - {"numba", "torch", "cuda"})
    if unknown or not chosen:
        raise ConfigError(f"--backends: choose from numba, torch, cuda (got {text!r})")
    if "cuda" in chosen:
        from plastic.cli.device import require_cuda

        require_cuda("bench kernels --backends cuda")
    return chosen


@bench_app.command("kernels")
def bench_kernels(
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    sizes: str = typer.Option("1024,4096", help="Comma-separated N (N_pre = N_post)."),
    probs: str = typer.Option("0.01,0.03,0.1", help="Spike probabilities per neuron per step."),
    rules: str = typer.Option("stdp,rstdp", help="Comma-separated rule names."),
    backends: str = typer.Option(
        "numba,torch",
        help="Comma-separated: numba (CPU kernels), torch (dense reference), cuda (GPU kernels).",
    ),
    steps: int = typer.Option(500, min=1, help="Steps per timed run."),
    torch_steps: int = typer.Option(
        None, min=1, help="Time the dense torch reference over this many steps (default: all)."
    ),
    repeats: int = typer.Option(3, min=1, help="Timed runs per figure (the median is kept)."),
    threads: int = typer.Option(
        None, min=1, help="Threads for numba and torch alike (default: their defaults)."
    ),
    output: Path = typer.Option(None, help="Also write the JSON report to this file."),
    omp_wait_policy: str = typer.Option(
        "passive",
        help="OpenMP wait policy for torch and numba alike, unless OMP_WAIT_POLICY is set: "
        "'passive' keeps idle workers from spinning on cores other threads need "
        "(on a busy 2-core machine spinning costs the kernels 4-6x); 'default' leaves it.",
    ),
) -> None:
    """Synapse updates per second: torch reference vs event-driven Numba vs the DRAM bound."""
    err = Console(stderr=True)
    if omp_wait_policy not in ("passive", "active", "default"):
        raise ConfigError("--omp-wait-policy must be passive, active or default")
    if omp_wait_policy != "default":
        # read by libgomp when it loads, i.e. on the first import of torch or numba's omp
        # pool; both are imported below, lazily, so this still takes effect
        os.environ.setdefault("OMP_WAIT_POLICY", omp_wait_policy.upper())
    from plastic_benchmarks import kernels

    if threads is not None:
        import numba
        import torch

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(threads)
    config = kernels.BenchConfig(
        rules=tuple(rule.strip() for rule in rules.split(",") if rule.strip()),
        sizes=_numbers(sizes, int, "--sizes"),
        probabilities=_numbers(probs, float, "--probs"),
        steps=steps,
        torch_steps=torch_steps,
        repeats=repeats,
        backends=_backends(backends),
    )
    from plastic.rules import get_rule

    for name in config.rules:
        get_rule(name)  # unknown rules fail now, with one line, not after minutes of timing
    report = kernels.run(config, progress=lambda message: err.print(f"[dim]{message}[/dim]"))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(
        title="Learning-rule kernels",
        caption="M/s: million synapse updates per second (N_pre x N_post x steps / s)",
    )
    for column in kernels.table_columns(report):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for cells in kernels.table_rows(report):
        table.add_row(*cells)
    out = Console()
    out.print(table)
    bandwidth = report["bandwidth"]
    out.print(
        f"memory bandwidth (STREAM triad, median): {bandwidth['median_gb_s']:.1f} GB/s -> "
        f"dense bound {bandwidth['dense_bound_msyn_s']:,.0f} M syn/s (8 bytes per synapse); "
        f"load average {report['machine']['load_average']}"
    )
