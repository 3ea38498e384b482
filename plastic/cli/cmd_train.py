"""`plastic train`: train a backbone preset with surrogate gradients (resumable).

Data-parallel on several processes when started by torchrun:
`torchrun --nproc-per-node N -m plastic train ...` (see plastic/models/distributed.py).
"""

from __future__ import annotations

from pathlib import Path

import typer

from plastic.cli.app import app


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Training text (any bytes)."),
    valid: Path | None = typer.Option(
        None, "--valid", help="Validation text; selects the best checkpoint."
    ),
    preset: str = typer.Option(
        "tiny", "--preset", help="Model preset: tiny, tiny-wide or nord-144m."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory: last/ and best/ checkpoints, logs."
    ),
    minutes: float | None = typer.Option(None, "--minutes", help="Wall-clock training budget."),
    steps: int | None = typer.Option(None, "--steps", help="Step budget (instead of --minutes)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Start a new run from this checkpoint's weights (fresh optimizer and schedule).",
    ),
    device: str = typer.Option(
        "cpu", "--device", help="cpu or cuda (cuda: bf16 autocast + checkpointing)."
    ),
    batch_size: int = typer.Option(
        16, "--batch-size", help="Global batch: split over torchrun's processes."
    ),
    seq_len: int = typer.Option(256, "--seq-len"),
    lr: float = typer.Option(2e-3, "--lr"),
    warmup_steps: int = typer.Option(200, "--warmup-steps", help="Linear warmup of the lr."),
    grad_checkpointing: bool | None = typer.Option(
        None,
        "--grad-checkpointing/--no-grad-checkpointing",
        help="Recompute each block in the backward pass (default: on with cuda).",
    ),
    target_rate: float = typer.Option(0.05, "--target-rate", help="Firing-rate target per site."),
    vocab_size: int | None = typer.Option(
        None, "--vocab-size", help="Override the preset's vocabulary size."
    ),
    decay_max: float | None = typer.Option(
        None,
        "--decay-max",
        help="Override the preset's ceiling on the token-mixing decays (how long the "
        "model can remember; e.g. 0.999).",
    ),
    decay_lr_scale: float = typer.Option(
        1.0,
        "--decay-lr-scale",
        help="The token-mixing decays' learning rate as a multiple of --lr (lets a "
        "fine-tuning run change how long each head remembers).",
    ),
    eval_every: float = typer.Option(
        300.0, "--eval-every", help="Seconds between validation + checkpoint."
    ),
    average_tail: float = typer.Option(
        0.0,
        "--average-tail",
        help="Also keep the mean of the weights over this last fraction of the run "
        "(e.g. 0.2; 0: off), saved as average/ with its validation score.",
    ),
    dropout: float = typer.Option(
        0.0,
        "--dropout",
        help="Residual dropout while training (what each path adds to the stream); "
        "inference never drops.",
    ),
    seed: int = typer.Option(0, "--seed"),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    compile_: bool = typer.Option(
        True, "--compile/--no-compile", help="torch.compile the LIF loops."
    ),
) -> None:
    """Train a spiking LM preset; Ctrl-C saves a checkpoint that --resume continues."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from plastic.errors import ConfigError
    from plastic.models.distributed import context_from_env
    from plastic.models.train import STATE_JSON, TrainConfig, train

    if init is not None and resume:
        raise ConfigError("--init starts a new run and --resume continues one: give only one")
    if (out / STATE_JSON).exists() and not resume:
        raise ConfigError(f"{out} already holds a training run: pass --resume to continue it")
    if resume and not (out / STATE_JSON).exists():
        raise ConfigError(f"--resume: no training run in {out}")
    overrides: dict[str, float | int] = {"vocab_size": vocab_size} if vocab_size else {}
    if decay_max is not None:
        overrides["decay_max"] = decay_max
    cfg = TrainConfig(
        data=str(data),
        valid=str(valid) if valid else None,
        out=str(out),
        preset=preset,
        minutes=minutes,
        steps=steps,
        device=device,
        batch_size=batch_size,
        seq_len=seq_len,
        lr=lr,
        warmup_steps=warmup_steps,
        grad_checkpointing=grad_checkpointing,
        target_rate=target_rate,
        eval_every_s=eval_every,
        seed=seed,
        threads=threads,
        compile=compile_,
        model_overrides=overrides,
        init=str(init) if init is not None else None,
        average_tail=average_tail,
        dropout=dropout,
        decay_lr_scale=decay_lr_scale,
    )
    cfg.validate()  # every option checked before the progress bar or any work
    err = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]train[/bold]"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
        disable=context_from_env().rank != 0,  # under torchrun, rank 0 alone reports
    )
    first = "the first steps compile the LIF loops (torch.compile)" if compile_ else ""
    task = progress.add_task("train", total=1.0, info=f"preparing: {first or 'loading data'}")

    def on_event(ev: dict) -> None:
        kind = ev["event"]
        if kind == "start":
            verb = "resuming" if ev["resumed"] else "starting"
            procs = f", {ev['processes']} processes" if ev["processes"] > 1 else ""
            err.print(f"{verb} {preset}: {ev['parameters']:,} parameters, step {ev['step']}{procs}")
            if not ev["resumed"] and ev.get("init_content_hash"):
                err.print(f"from {init} (content hash {ev['init_content_hash'][:12]})")
        elif kind == "step":
            vb = f"{ev['valid_bpb']:.3f}" if ev["valid_bpb"] is not None else "-"
            info = (
                f"step {ev['step']} loss {ev['train_bpb']:.3f} b/B  valid {vb} b/B  "
                f"{ev['tokens_per_s']:.0f} tok/s  sparsity {ev['sparsity']:.1%}"
            )
            progress.update(task, completed=min(ev["progress"], 1.0), info=info)
        elif kind == "eval":
            vb = f"{ev['valid_bpb']:.4f}" if ev["valid_bpb"] is not None else "n/a (no --valid)"
            progress.console.print(
                f"step {ev['step']}: valid {vb} bits/byte, "
                f"train {ev['train_bpb']:.4f}, sparsity {ev['sparsity']:.1%}, "
                f"{ev['tokens_per_s']:.0f} tok/s"
            )
        elif kind == "interrupted":
            progress.console.print(f"interrupted at step {ev['step']}: checkpoint saved in {out}")
        elif kind == "aborted":
            progress.console.print(f"aborted mid-step: {out} holds the last periodic checkpoint")
        elif kind == "finishing":
            what = "final validation and checkpoint" if ev["validating"] else "final checkpoint"
            progress.update(task, completed=1.0, info=f"{what}...")
        elif kind == "done":
            if ev["valid_bpb"] is None:
                progress.console.print(
                    f"done: {ev['step']} steps; checkpoint in {out}/last (no --valid: no best/)"
                )
            else:
                progress.console.print(
                    f"done: {ev['step']} steps, valid {ev['valid_bpb']:.4f} bits/byte; "
                    f"best in {out}/best, last in {out}/last"
                )
            if ev.get("averaged_steps"):
                score = ev.get("average_valid_bpb")
                scored = f", valid {score:.4f} bits/byte" if score is not None else ""
                progress.console.print(
                    f"the mean of the last {ev['averaged_steps']} steps' weights{scored}: "
                    f"{out}/average"
                )

    with progress:
        train(cfg, on_event)
