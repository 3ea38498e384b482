"""`plastic chat`: talk to the model in a REPL, one shot (`--prompt`) or from a script."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plastic.cli.app import app
from plastic.cli.threads import ThreadsOption, use_threads

if TYPE_CHECKING:
    from plastic.cli.chat.session import ChatSession

MODEL_HELP = "Checkpoint directory or preset (default: the shipped model)."


@app.command("chat")
def chat_cmd(
    model: Annotated[str | None, typer.Option("--model", help=MODEL_HELP)] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="One user turn: print the reply, exit.")
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option("--script", help="File of user turns, one per line (slash commands too)."),
    ] = None,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=0, help="Reply length cap.")
    ] = 200,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0 = greedy.")] = 0.8,
    top_k: Annotated[
        int, typer.Option("--top-k", min=0, help="Sample from the k likeliest (0 = all).")
    ] = 40,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the sampler (reproducible runs).")
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per turn or command on stdout."),
    ] = False,
    learn: Annotated[
        bool,
        typer.Option(
            "--learn/--no-learn",
            help="A plastic context memory learns from the conversation (your turns; "
            "/good, /bad credit the last reply).",
        ),
    ] = False,
    rule: Annotated[
        str | None,
        typer.Option(
            "--rule",
            help="Learning rule of a new adapter: detector_stdp (the context memory) or a "
            "readout adapter's rule (rstdp, stdp, hebb; see `plastic rules`).",
            show_default="detector_stdp",
        ),
    ] = None,
    reward: Annotated[
        str | None,
        typer.Option(
            "--reward",
            help="Reward sources of a new adapter, comma-separated (memory: feedback only).",
            show_default="feedback (readout: surprise,feedback)",
        ),
    ] = None,
    adapter: Annotated[
        Path | None,
        typer.Option("--adapter", help="Resume a saved adapter (a /save directory)."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Record spikes, rewards and turns into a Zarr trace."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="--record into a store of another backbone or rule; /save may overwrite.",
        ),
    ] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A new adapter's setting: rule.KEY=VALUE (a rule parameter, see `plastic "
            "rules NAME`) or adapter.KEY=VALUE (repeatable; /stats shows the values in use).",
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="cpu, or cuda: the backbone on the GPU, and a new adapter's rule too "
            "(readout/residual rules; the context memory learns on the CPU).",
        ),
    ] = "cpu",
    threads: ThreadsOption = 1,
) -> None:
    """Chat with the model: replies stream as they are generated; /help lists the commands."""
    if prompt is not None and script is not None:
        raise typer.BadParameter("cannot be combined with --script", param_hint="--prompt")
    if prompt is not None and not prompt.strip():
        raise typer.BadParameter("is empty: there is nothing to send", param_hint="--prompt")
    interactive = prompt is None and script is None and _is_terminal(sys.stdin, sys.stdout)
    if json_out and interactive:
        raise typer.BadParameter(
            "needs --prompt, --script or input from a pipe", param_hint="--json"
        )

    from plastic.cli.chat.input import (
        script_lines,
        stream_lines,
        terminal_confirm,
        terminal_lines,
    )

    lines = script_lines(script) if script is not None else None  # a missing file fails early
    from plastic.cli.settings import split_chat_sets

    rule_params, settings = split_chat_sets(sets or [])
    from plastic.cli.device import adapter_settings, memory_note, parse_device

    dev = parse_device(device)
    use_threads(threads)
    settings = {**adapter_settings(dev, rule), **settings}  # an explicit --set wins

    from rich.console import Console

    from plastic.cli.chat.render import JsonRenderer, RichRenderer
    from plastic.cli.chat.session import ChatOptions, ChatSession
    from plastic.models.checkpoint import resolve_model
    from plastic.models.generate import Conversation, Sampling

    learning = None
    recorder = None
    wants_adapters = learn or adapter is not None or rule is not None or reward is not None
    wants_adapters = wants_adapters or bool(sets)
    with Console(stderr=True).status("loading the model", spinner="dots") as spinner:
        lm = resolve_model(model).to(dev.torch_device)
        if wants_adapters or record:
            note = memory_note(dev, rule) if adapter is None else None
            if note:
                spinner.console.print(f"[dim]{note}[/dim]")
            spinner.update("loading the learning kernels (compiled once, then cached)")
            from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model

            plastic = build_plastic_model(
                lm,
                rule=rule,
                reward=reward,
                adapter_dir=adapter,
                rule_params=rule_params,
                settings=settings,
            )
            learning = ChatLearning(plastic, learning=learn, overwrite=force)
            spinner.update("preparing the drift guard's probe")
            learning.engine.prepare()
        if record is not None:
            from plastic.replay.recorder import TraceRecorder

            recorder = TraceRecorder.attach(plastic, record, force=force, seed=seed)
    options = ChatOptions(
        max_new_tokens=max_new_tokens,
        sampling=Sampling(temperature=temperature, top_k=top_k or None).validate(),
    )
    renderer = JsonRenderer(sys.stdout) if json_out else RichRenderer(echo_input=not interactive)
    from plastic.cli.chat.learning import attach_learning, attach_learning_unavailable

    if learning is None:
        session = ChatSession(Conversation(lm, seed=seed), renderer, options)
        attach_learning_unavailable(session)
    else:
        session = ChatSession(Conversation(learning.model, seed=seed), renderer, options)
        attach_learning(session, learning)

    one_shot = None
    try:
        if prompt is not None:
            one_shot = session.handle(prompt)
        elif lines is not None:
            session.run(lines)
        elif interactive:
            _banner(session)
            session.confirm = terminal_confirm
            session.run(terminal_lines(session.commands.names), interactive=True)
        elif sys.stdin is not None:
            session.run(stream_lines(sys.stdin))
    finally:
        if recorder is not None:
            recorder.close()
    if one_shot is not None and one_shot.stop == "interrupted":
        # the reply's tokens are printed and learnt from; the command itself was stopped
        raise typer.Exit(130)


def _is_terminal(*streams: object) -> bool:
    """True if every stream exists and is a terminal (a closed stdin is None)."""
    return all(s is not None and s.isatty() for s in streams)  # type: ignore[attr-defined]


def _banner(session: ChatSession) -> None:
    """One line on stderr: which model, the seed, how to get help and leave."""
    from rich.console import Console

    lm = session.conversation.model
    name = lm.config.name
    params = lm.num_parameters()
    learning = ""
    if session.learner is not None:
        status = session.learner.status()
        learning = f" · learning {status.get('learn', 'off')}"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold]plastic chat[/] · {name} ({params:,} parameters) · seed "
        f"{session.conversation.seed}{learning} · /help for commands · Ctrl-D to leave"
    )
