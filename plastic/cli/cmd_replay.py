"""`plastic replay`: replay a recorded trace open loop (exact, or counterfactual) or closed loop."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from plastic.cli.app import app, json_line
from plastic.cli.settings import parse_sets
from plastic.cli.threads import ThreadsOption, use_threads
from plastic.errors import ConfigError, TraceError

EXACT_TOLERANCE = 1e-6  # = plastic.replay.closed_loop.EXACT_TOLERANCE (not imported: startup)
VERIFY_TOLERANCE = EXACT_TOLERANCE


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
        typer.Option(
            "--set",
            help="Rule parameter KEY=V (repeatable); a context memory's own setting adapter.KEY=V.",
        ),
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
    threads: ThreadsOption = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    device: Annotated[
        str,
        typer.Option("--device", help="cpu, or cuda: the rules' CUDA kernels (open loop)."),
    ] = "cpu",
) -> None:
    """Replay a trace: apply a rule to the recorded spikes and rewards (open loop), or re-run
    the backbone so the rule's own spikes drive learning (--closed-loop)."""
    from rich.console import Console

    from plastic.cli.chat.render import rich_progress
    from plastic.replay.export import check_out_dir
    from plastic.replay.outcomes import replayed_values
    from plastic.replay.reader import TraceReader

    params = parse_sets(sets or [])
    if backend is not None and backend not in ("numba", "torch"):
        raise ConfigError(f"--backend must be numba or torch, not {backend!r}")
    if closed_loop and (verify or epochs != 1 or backend is not None):
        raise ConfigError("--closed-loop cannot be combined with --verify, --epochs or --backend")
    from plastic.cli.device import parse_device

    if parse_device(device).rule_backend == "cuda":
        if closed_loop or backend is not None:
            raise ConfigError(
                "--device cuda replays open loop on the CUDA kernels: drop --closed-loop/--backend"
            )
        backend = "cuda"
    if out is not None:
        check_out_dir(out)
    use_threads(threads)
    reader = TraceReader(trace)
    err = Console(stderr=True, soft_wrap=True)
    if backend != "cuda":  # (CUDA kernels compile on their first launch)
        with err.status("preparing the learning kernels (compiled once, then cached on disk)"):
            _prepare_kernels(reader, rule, params, backend)
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
            "counterfactual": result.counterfactual,
            "tokens": result.tokens,
            "seconds": result.seconds,
            "tokens_per_s": result.tokens_per_s,
            "max_abs_diff_vs_recorded": result.final_diff,
            "checkpoints": [
                {"index": c.index, "turn": c.turn, "token": c.token, "max_abs_diff": c.worst}
                for c in result.checkpoints
            ],
            "max_abs_diff": result.max_abs_diff,
            "exact": result.exact,
            "divergence": None if result.counterfactual else result.divergence_message(),
        }
        replayed = replayed_values(_layer_synapses(result.model))
        if out is not None:
            _save_out(result.model, out, summary)
        result.release()
        counterfactual = result.counterfactual
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
            "counterfactual": not result.exact,
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
        replayed = replayed_values(result.synapses)
        counterfactual = not result.exact
        backbone = None
        if out is not None:
            from plastic.models.checkpoint import resolve_model
            from plastic.replay.closed_loop import build_model, check_backbone
            from plastic.replay.export import load_into

            backbone = resolve_model(model)
            check_backbone(reader, backbone)
            plastic_model = build_model(reader, backbone, rule=rule, params=params)
            load_into(plastic_model, result.synapses)
            _save_out(plastic_model, out, summary)
            for name in list(plastic_model.adapters):
                plastic_model.delete_adapter(name)
    _outcome(
        summary, reader, replayed, counterfactual or epochs > 1, backbone, model, rule, params, err
    )
    _report(summary, json_out)
    if verify:
        worst = summary.get("max_abs_diff")
        if worst is None:
            raise ConfigError(f"{trace}: no committed checkpoint to verify against")
        if not worst <= VERIFY_TOLERANCE:  # NaN (a damaged state) must fail too
            raise ConfigError(
                f"verify failed: max abs weight difference {worst:.3g} > {VERIFY_TOLERANCE:g}"
            )
    if closed_loop and summary.get("divergence"):
        raise TraceError(f"closed-loop replay {summary['divergence']}")


def _layer_synapses(plastic_model: Any) -> dict[str, Any]:
    """Every adapter layer's synapses, keyed "adapter/site"."""
    return {
        f"{name}/{site}": layer.synapses
        for name, adapter in plastic_model.adapters.items()
        for site, layer in adapter.layers.items()
    }


def _save_out(plastic_model: Any, out: Path, summary: dict[str, Any]) -> None:
    from plastic.replay.export import save_atomically

    save_atomically(plastic_model, out)
    summary["out"] = str(out)


def _prepare_kernels(
    reader: Any, rule: str | None, params: dict[str, Any], backend: str | None
) -> None:
    """Compile or load the kernels of every rule the replay will run, before it starts."""
    from plastic.errors import PlasticError
    from plastic.plasticity.synapses import prepare_rule_kernels

    for session in reader.sessions[:1]:
        for config in session["adapters"].values():
            if config.get("kind") == "memory":
                continue  # its kernels load from the on-disk cache on its first read
            name = rule or config["rule"]
            base = dict(config.get("rule_params", {})) if name == config["rule"] else {}
            try:
                prepare_rule_kernels(
                    name, {**base, **params}, backend or config.get("backend", "numba")
                )
            except PlasticError:
                return  # the replay itself reports what is wrong, in its own words


def _outcome(
    summary: dict[str, Any],
    reader: Any,
    replayed: dict[str, Any],
    score_text: bool,
    backbone: Any,
    model: str | None,
    rule: str | None,
    params: dict[str, Any],
    err: Any,
) -> None:
    """Add the weight figures, the user text's bits/byte (when the replay learnt something
    else than the recording) and a one-line verdict to `summary`."""
    from plastic.replay.outcomes import (
        recorded_final_weights,
        start_weights,
        text_figures,
        weight_figures,
    )

    recorded = recorded_final_weights(reader)
    summary["weights"] = weight_figures(start_weights(reader), recorded, replayed)
    summary["text"] = None
    if score_text:
        if backbone is None:
            backbone = _recorded_backbone(reader, model, err)
        if backbone is not None:
            with err.status("scoring the recorded user text under each set of weights"):
                summary["text"] = text_figures(
                    reader,
                    backbone,
                    {"replayed": replayed, **({"recorded": recorded} if recorded else {})},
                    rule=rule,
                    params=params,
                )
    summary["verdict"] = _verdict(summary)


def _recorded_backbone(reader: Any, model: str | None, err: Any) -> Any:
    """The backbone the trace was recorded with (--model, else the shipped one if it is);
    None with a note when the shipped one is another."""
    from plastic.models.checkpoint import resolve_model
    from plastic.replay.closed_loop import check_backbone

    backbone = resolve_model(model)
    try:
        check_backbone(reader, backbone)
    except TraceError:
        if model is not None:
            raise
        err.print(
            "note: bits/byte of the user text need the recorded backbone: pass it with --model"
        )
        return None
    return backbone


def _verdict(summary: dict[str, Any]) -> str:
    """One line: did the replay reproduce the recording, or what did it learn instead."""
    worst = max(
        (w.get("max_abs_diff_to_recorded", 0.0) for w in summary["weights"].values()), default=0.0
    )
    has_recorded = any("max_abs_diff_to_recorded" in w for w in summary["weights"].values())
    text = summary.get("text")
    if summary["mode"] == "closed_loop" and not summary["counterfactual"]:
        if summary.get("divergence"):
            return summary["divergence"]
        if summary.get("max_abs_diff") is None:
            return "nothing to compare: the trace holds no checkpoint"
        return (
            f"exact: all {len(summary['checkpoints'])} checkpoints reproduced "
            f"(max abs difference {summary['max_abs_diff']:.3g} <= {EXACT_TOLERANCE:g})"
        )
    if not summary["counterfactual"] and summary.get("epochs", 1) == 1:
        if not has_recorded:
            return "replayed; the trace holds no checkpoint to compare with"
        ok = worst <= EXACT_TOLERANCE
        return (
            f"{'reproduces' if ok else 'does NOT reproduce'} the recorded weights "
            f"(max abs difference {worst:.3g})"
        )
    if text is None or "recorded_bits_per_byte" not in text:
        return (
            f"learnt weights at max abs difference {worst:.3g} from the recorded ones"
            if has_recorded
            else "replayed; no recorded weights to compare with"
        )
    gain = text["recorded_bits_per_byte"] - text["replayed_bits_per_byte"]
    compared = (
        f"as the recorded weights do, to 4 decimals ({gain:+.1e})"
        if abs(gain) < 5e-5
        else f"{'better' if gain > 0 else 'worse'} than the recorded weights' "
        f"{text['recorded_bits_per_byte']:.4f} by {abs(gain):.4f}"
    )
    return (
        f"on the recorded user text ({text['bytes']:,} bytes) the replayed weights give "
        f"{text['replayed_bits_per_byte']:.4f} bits/byte, {compared} "
        f"(frozen backbone {text['frozen_bits_per_byte']:.4f})"
    )


def _report(summary: dict[str, Any], json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json_line(summary))
        return
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    mode = summary["mode"].replace("_", " ")
    if summary.get("counterfactual"):
        mode += " counterfactual"
    out.print(
        f"{mode} replay: {summary['tokens']:,} tokens in {summary['seconds']:.2f} s "
        f"({summary['tokens_per_s']:,.0f} tokens/s)"
    )
    open_loop = "max_abs_diff" in summary and summary["mode"] == "open_loop"
    if open_loop and not summary["checkpoints"]:
        out.print("verify: no committed checkpoint to compare with")
    elif open_loop:
        worst = summary["max_abs_diff"]
        verdict = "ok" if worst is not None and worst <= VERIFY_TOLERANCE else "FAILED"
        out.print(
            f"verify: {summary['checkpoints']} checkpoints, max abs difference "
            f"{worst if worst is not None else float('nan'):.3g} ({verdict})"
        )
    for key, row in summary.get("weights", {}).items():
        line = f"{key}: weight change {row['replayed_change']:.4g} (Frobenius, from the start)"
        if "recorded_change" in row:
            line += (
                f", recorded {row['recorded_change']:.4g}; distance to the recorded final "
                f"weights {row['distance_to_recorded']:.4g} (max abs "
                f"{row['max_abs_diff_to_recorded']:.3g})"
            )
        out.print(line)
    text = summary.get("text")
    if text:
        parts = [f"replayed {text['replayed_bits_per_byte']:.4f}"]
        if "recorded_bits_per_byte" in text:
            parts.append(f"recorded {text['recorded_bits_per_byte']:.4f}")
        parts.append(f"frozen backbone {text['frozen_bits_per_byte']:.4f}")
        out.print(f"recorded user text ({text['bytes']:,} bytes), bits/byte: " + ", ".join(parts))
    if summary.get("skipped_loads"):
        out.print(f"skipped {summary['skipped_loads']} saved-state loads (counterfactual)")
    if "out" in summary:
        out.print(f"adapter written to {summary['out']}")
    out.print(f"verdict: {summary['verdict']}")
