"""`plastic inspect`: what a trace holds: overview, spike rates, weight changes, rewards."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from plastic.cli.app import app, json_line
from plastic.errors import ConfigError

PLOT_HINT = "--plot needs matplotlib: pip install 'plastic-snn[plot]'"


@app.command("inspect")
def inspect_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace store (a .zarr directory).")],
    rates: Annotated[
        bool, typer.Option("--rates", help="Spike rates per site; rate vs surprise.")
    ] = False,
    weights: Annotated[
        bool, typer.Option("--weights", help="Weight-change norms per turn.")
    ] = False,
    reward: Annotated[bool, typer.Option("--reward", help="Reward and baseline.")] = False,
    site: Annotated[
        str | None,
        typer.Option(
            "--site", help="Only this site: an adapter site or a backbone site (blocks.0.ffn...)."
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Tokens START:STOP of the --plot raster (default: the last 200).",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Most active neurons.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write a figure (PNG): a spike raster of --site over --window, the adapters' "
            "weight change as a heatmap, and what --rates/--weights/--reward ask.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Read every committed chunk; exit 1 if any is damaged."),
    ] = False,
) -> None:
    """Inspect a trace store: sizes and sessions, and what --rates/--weights/--reward ask."""
    from plastic.replay import analysis
    from plastic.replay.reader import TraceReader

    if plot is not None:
        _check_plot_path(plot)
    reader = TraceReader(trace)
    if check:
        verified = reader.check()
        if json_out:
            sys.stdout.write(json_line({"check": "ok", **verified}))
        else:
            typer.echo(
                f"{trace}: ok ({verified['arrays']} arrays, {verified['rows']:,} committed rows, "
                f"{verified['bytes']:,} bytes read back and checked)"
            )
        return
    backbone_sites = [entry["site"] for entry in reader.network_sites()]
    if site is not None and site in backbone_sites:
        sites, network = [], [site]
    else:
        sites = [reader.site(site)] if site is not None else reader.sites
        network = None if site is None else []
    span = _window(window, reader.n_tokens) if window is not None else None
    report: dict[str, Any] = {"overview": analysis.overview(reader)}
    if rates:
        report["network"] = analysis.network_report(reader, network, top_k)
        report["rates"] = analysis.rates_report(reader, sites, top_k)
        report["rate_vs_surprise"] = [
            analysis.rate_surprise(reader, spec) for spec in sites if spec.kind == "readout"
        ]
    if weights:
        report["weights"] = analysis.weights_report(reader, sites)
    if reward:
        report["reward"] = analysis.reward_report(reader)
    if plot is not None:
        from plastic.replay.plot import plot_report

        raster = site if site is not None else (backbone_sites[-1] if backbone_sites else None)
        plot_report(reader, sites, report, plot, raster_site=raster, window=span)
        report["plot"] = str(plot)
    if json_out:
        sys.stdout.write(json_line(report))
        return
    _print(report)


PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _check_plot_path(plot: Path) -> None:
    """--plot needs matplotlib, a figure format it writes, and an existing directory."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(PLOT_HINT) from None
    if plot.suffix.lower() not in PLOT_FORMATS:
        raise ConfigError(
            f"--plot {plot}: a figure is written as {', '.join(PLOT_FORMATS)}, "
            f"not {plot.suffix or 'a file without extension'}"
        )
    if plot.is_dir():
        raise ConfigError(f"--plot {plot} is a directory; give a file name")
    if not plot.parent.is_dir():
        raise ConfigError(f"--plot {plot}: directory {plot.parent} does not exist")


def _window(text: str, tokens: int) -> tuple[int, int]:
    """`--window START:STOP` (either side may be empty; negative counts from the end)."""
    start_text, sep, stop_text = text.partition(":")
    try:
        start = int(start_text) if start_text.strip() else 0
        stop = int(stop_text) if stop_text.strip() else tokens
    except ValueError:
        raise ConfigError(f"--window {text!r}: expected START:STOP in tokens, e.g. 0:200") from None
    if not sep:
        raise ConfigError(f"--window {text!r}: expected START:STOP in tokens, e.g. 0:200")
    start, stop = (v + tokens if v < 0 else v for v in (start, stop))
    start, stop = max(0, start), min(tokens, stop)
    if start >= stop:
        raise ConfigError(f"--window {text!r}: no tokens there (the trace holds {tokens:,})")
    return start, stop


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    o = report["overview"]
    turns = ", ".join(
        _count(v, _TURN_LABELS[k]) for k, v in o["turns"].items() if v and k in _TURN_LABELS
    )
    out.print(
        f"[bold]{o['path']}[/] · schema v{o['schema_version']} · backbone "
        f"{o['backbone'].get('name')} {str(o['backbone'].get('content_hash'))[:12]} · rule "
        f"{o['rule']} · reward {','.join(o['reward'] or [])}"
    )
    out.print(
        f"{_count(o['sessions'], 'session')}, {o['tokens']:,} tokens, {o['events']:,} events, "
        f"{turns or 'no turns'}, {_count(o['checkpoints'], 'checkpoint')}"
    )
    out.print(f"{o['bytes']:,} bytes on disk = {o['bytes_per_token']:,.1f} bytes/token")
    for key, s in o["sites"].items():
        if s["kind"] == "memory":
            _print_memory(out, key, s)
            continue
        t, n_pre, n_post = s["raster_shape"]
        out.print(
            f"  {key} ({s['kind']}): {s['steps']:,} rule steps of [{t}x{n_pre}] pre + "
            f"[{t}x{n_post}] post, rasters {s['raster_bytes_per_token']:,.1f} bytes/token"
        )
    network = report.get("network")
    if network is not None and not network:
        out.print("backbone sites: none recorded (a trace from before traces kept them)")
    for name, r in (network or {}).items():
        top = ", ".join(f"#{t['neuron']} {t['rate']:.2f}" for t in r["top"])
        out.print(
            f"[bold]{name}[/]: {r['neurons']} neurons over {r['steps']:,} tokens: mean rate "
            f"{r['mean_rate']:.4f} (sparsity {r['sparsity']:.1%}), {r['dead']} dead, "
            f"{r['saturated']} saturated (>= 90%); top: {top}"
        )
        out.print(
            f"  rate per token [{r['rate_min_step']:.3f}..{r['rate_max_step']:.3f}]: "
            f"{r['sparkline']}"
        )
    for key, entry in report.get("rates", {}).items():
        if entry["kind"] == "memory":
            _print_reading(out, key, entry["reading"])
            continue
        for population in ("pre", "post"):
            if population not in entry:
                continue
            r = entry[population]
            if r["steps"] == 0:
                out.print(f"[bold]{key}[/] {population}: no rule steps recorded (learning was off)")
                continue
            top = ", ".join(f"#{t['neuron']} {t['rate']:.2f}" for t in r["top"])
            out.print(
                f"[bold]{key}[/] {population}: {r['neurons']} neurons over {r['steps']:,} steps: "
                f"mean rate {r['mean_rate']:.4f} (sparsity {r['sparsity']:.1%}), "
                f"{r['dead']} dead, {r['saturated']} saturated (>= 90%)"
            )
            out.print(f"  top: {top}")
            out.print(
                f"  rate over time [{r['rate_min_step']:.3f}..{r['rate_max_step']:.3f}]: "
                f"{r['sparkline']}"
            )
    for c in report.get("rate_vs_surprise", []):
        if c["r"] is None:
            out.print(f"rate vs surprise ({c['site']}): {c.get('note')}")
            continue
        fz, bs = c["fisher_ci95"], c["bootstrap_ci95"]
        boot = f", block bootstrap [{bs[0]:+.3f}, {bs[1]:+.3f}]" if bs else ""
        out.print(
            f"rate vs surprise ({c['site']}): Pearson r = {c['r']:+.3f} over {c['n']:,} tokens; "
            f"95% CI Fisher z [{fz[0]:+.3f}, {fz[1]:+.3f}]{boot}"
        )
    for key, w in report.get("weights", {}).items():
        d = w["distribution"]
        if d is None:
            out.print(f"[bold]{key}[/] weights: no turns")
            continue
        kinds = [t["kind"] for t in w["turns"]]
        counted = ", ".join(
            _count(kinds.count(kind), label)
            for kind, label in (("turn", "turn"), ("feedback", "feedback turn"), ("undo", "undo"))
            if kind in kinds
        )
        out.print(
            f"[bold]{key}[/] weight change per record (||dW||_F; {counted}): "
            f"min {d['min']:.3g}, median {d['median']:.3g}, p75 {d['p75']:.3g}, "
            f"max {d['max']:.3g}"
        )
        out.print(f"  per turn: {w['sparkline']}")
    if "reward" in report:
        r = report["reward"]
        mean = f"{r['reward_mean']:+.3f}" if r["reward_mean"] is not None else "-"
        out.print(
            f"reward: {r['rewarded_tokens']:,} of {r['tokens']:,} tokens rewarded, mean {mean}, "
            f"sum {r['reward_sum']:+.2f}; feedback {r['feedback'] or 'none'}"
        )
        out.print(f"  reward:   {r['reward_sparkline']}")
        out.print(f"  baseline: {r['baseline_sparkline']} (last {_fixed(r['baseline_last'])})")
        out.print(
            f"  surprise: {r['surprise_sparkline']} (mean {_fixed(r['surprise_mean_bits'])} bits)"
        )
    if "plot" in report:
        out.print(f"figure written to {report['plot']}")


def _print_memory(out: Any, key: str, s: dict[str, Any]) -> None:
    """A context memory's overview lines (see plastic.replay.memory_report)."""
    import numpy as np

    from plastic.replay.sparkline import sparkline

    out.print(
        f"  {key} (memory): read {s['bytes_learnt']:,} bytes learnt from, "
        f"{s['bytes_of_replies']:,} of replies, {s['bytes_read_not_learnt']:,} not learnt; "
        f"{s['boundaries']} stream boundaries, {_count(s['credits'], 'credit')} "
        f"(/good, /bad), {_count(s['undo_restores'], 'restore')}, "
        f"{_count(s['caps'], 'cap check')}, "
        f"{_count(s['drift_blends'], 'drift back-off')}, {_count(s['resets'], 'reset')}; "
        f"{s['disk_bytes_per_token']:,.1f} bytes/token on disk"
    )
    rows = s["checkpoints"]
    if s["start"] is not None:
        st = s["start"]
        out.print(f"    at the start: {st['detectors']:,} detectors, {st['synapses']:,} synapses")
    if rows:
        last = rows[-1]
        detectors = np.array([r["detectors"] for r in rows], np.float64)
        out.print(
            f"    at checkpoint {last['checkpoint']} (turn record {last['turn']}): "
            f"{last['detectors']:,} detectors, {last['synapses']:,} synapses, mixer norm "
            f"{last['mixer_norm']:.4g}; detectors per checkpoint: {sparkline(detectors)}"
        )
    c = s["change"]
    if c is not None:
        out.print(
            f"    since the start: +{c['detectors_created']:,} detectors, "
            f"+{c['synapses_created']:,} synapses, mixer change {c['mixer_change']:.4g}, "
            f"weight change {c['weight_change']:.4g} (||dW||_F, synapses and mixer)"
        )


def _print_reading(out: Any, key: str, r: dict[str, Any]) -> None:
    """How a context memory predicted the user text (see memory_report.memory_reading)."""
    if not r["learnt_bytes"]:
        out.print(f"[bold]{key}[/] (memory): no learnt bytes (learning was off)")
        return
    bits = r["bits_per_byte"]
    hits = ", ".join(f"{k}: {rate:.0%}" for k, rate in zip(r["orders"], r["hit_rate"], strict=True))
    out.print(
        f"[bold]{key}[/] (memory) on the {r['learnt_bytes']:,} learnt bytes: "
        f"{bits['memory']:.4f} bits/byte, the backbone alone {bits['backbone']:.4f}; "
        f"gate mean {r['gate_mean']:.3f}, last {r['gate_last']:.3f}"
    )
    out.print(f"  detector present, by order (bytes of context): {hits}")
    out.print(f"  gate over the learnt bytes: {r['gate_sparkline']}")
    if r["exact"] is False:
        out.print("  (the replay did NOT reach the last checkpoint: figures may be off)")


# How the overview line names each kind of turn record. "session" records are left out:
# the line counts sessions already (one record opens each).
_TURN_LABELS = {
    "turn": "turn",
    "feedback": "feedback event",
    "undo": "undo",
    "reset": "reset",
    "close": "clean close",
}


def _fixed(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _count(n: int, noun: str) -> str:
    """'1 turn', '6 turns' (the event names are singular nouns)."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
