"""`plastic replay`: replay a recorded trace open loop (exact, or counterfactual) or closed loop."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from plastic.cli.app import app, json_line
from plastic.errors import ConfigError

VERIFY_TOLERANCE = 1e-6


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are JSON when they parse (numbers, true/false), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@app.command("replay")
def replay_cmd(
    trace: Annotated[Path, typer.Argument(help="Trace store (a .zarr directory).")],
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Check the replay reproduces every recorded checkpoint."),
    ] = False,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Replay with another rule (counterfactual).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Rule parameter key=value (repeatable)."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Replay K times.")] = 1,
    closed_loop: Annotated[
        bool,
        typer.Option("--closed-loop", help="Re-run the backbone over the recorded tokens."),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Backbone for --closed-loop/--out (default: shipped)."),
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="numba or torch (default: as recorded).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the resulting adapter to DIR.")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads.")] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay a trace: apply a rule to the recorded spikes and rewards (open loop), or re-run
    the backbone so the rule's own spikes drive learning (--closed-loop)."""
    from rich.console import Console

    from plastic.cli.chat.render import rich_progress
    from plastic.replay.export import check_out_dir
    from plastic.replay.reader import TraceReader

    params = parse_sets(sets or [])
    if backend is not None and backend not in ("numba", "torch"):
        raise ConfigError(f"--backend must be numba or torch, not {backend!r}")
    if closed_loop and (verify or epochs != 1 or backend is not None):
        raise ConfigError("--closed-loop cannot be combined with --verify, --epochs or --backend")
    if out is not None:
        check_out_dir(out)
    _threads(threads)
    reader = TraceReader(trace)
    err = Console(stderr=True, soft_wrap=True)
    if closed_loop:
        from plastic.models.checkpoint import resolve_model
        from plastic.replay.closed_loop import check_backbone
        from plastic.replay.closed_loop import closed_loop as run_closed

        backbone = resolve_model(model)
        check_backbone(reader, backbone)
        with rich_progress(err, "replay (closed loop)", max(reader.n_tokens, 1)) as advance:
            result = run_closed(reader, backbone, rule=rule, params=params, progress=advance)
        summary = {
            "mode": "closed_loop",
            "tokens": result.tokens,
            "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_s,
            "max_abs_diff_vs_recorded": result.final_diff,
        }
        plastic_model = result.model
    else:
        from plastic.replay.replay import OpenLoopReplay, ReplayOptions

        with rich_progress(err, "replay", max(reader.n_events * epochs, 1)) as advance:
            options = ReplayOptions(rule, params, backend, epochs, verify, advance)
            replayer = OpenLoopReplay(reader, options)
            if verify and not replayer.exact:
                raise ConfigError("--verify needs the recorded rule and parameters")
            result = replayer.run()
        summary = {
            "mode": "open_loop",
            "exact": result.exact,
            "epochs": epochs,
            "events": result.events,
            "steps": result.steps,
            "tokens": result.tokens,
            "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_s,
            "skipped_loads": result.skipped_loads,
        }
        if verify:
            summary["checkpoints"] = len(result.checkpoint_diffs)
            summary["max_abs_diff"] = result.max_abs_diff
            summary["final_diff"] = result.final_diff
        plastic_model = None
        if out is not None:
            from plastic.models.checkpoint import resolve_model
            from plastic.replay.closed_loop import build_model, check_backbone
            from plastic.replay.export import load_into

            backbone = resolve_model(model)
            check_backbone(reader, backbone)
            plastic_model = build_model(reader, backbone, rule=rule, params=params)
            load_into(plastic_model, result.synapses)
    if out is not None and plastic_model is not None:
        from plastic.replay.export import save_atomically

        save_atomically(plastic_model, out)
        summary["out"] = str(out)
    _report(summary, json_out)
    if verify:
        worst = summary.get("max_abs_diff")
        if worst is None:
            raise ConfigError(f"{trace}: no committed checkpoint to verify against")
        if not worst <= VERIFY_TOLERANCE:  # NaN (a damaged state) must fail too
            raise ConfigError(
                f"verify failed: max abs weight difference {worst:.3g} > {VERIFY_TOLERANCE:g}"
            )


def _threads(n: int) -> None:
    import torch

    from plastic.plasticity import set_kernel_threads

    torch.set_num_threads(n)
    set_kernel_threads(n)


def _report(summary: dict[str, Any], json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json_line(summary))
        return
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    mode = summary["mode"].replace("_", " ")
    out.print(
        f"{mode} replay: {summary['tokens']:,} tokens in {summary['seconds']:.2f} s "
        f"({summary['tokens_per_s']:,.0f} tokens/s)"
    )
    if "max_abs_diff" in summary and not summary["checkpoints"]:
        out.print("verify: no committed checkpoint to compare with")
    elif "max_abs_diff" in summary:
        worst = summary["max_abs_diff"]
        verdict = "ok" if worst is not None and worst <= VERIFY_TOLERANCE else "FAILED"
        out.print(
            f"verify: {summary['checkpoints']} checkpoints, max abs difference "
            f"{worst if worst is not None else float('nan'):.3g} ({verdict})"
        )
    if summary.get("max_abs_diff_vs_recorded"):
        diffs = ", ".join(f"{k} {v:.3g}" for k, v in summary["max_abs_diff_vs_recorded"].items())
        out.print(f"vs the recorded final weights: max abs difference {diffs}")
    if summary.get("skipped_loads"):
        out.print(f"skipped {summary['skipped_loads']} saved-state loads (counterfactual)")
    if "out" in summary:
        out.print(f"adapter written to {summary['out']}")
