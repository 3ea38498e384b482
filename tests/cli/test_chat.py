"""`plastic chat`: scripts, slash commands, --json, one-shot prompts, odd input, REPL parts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.chat.commands import CommandResult
from plastic.cli.chat.input import history_file, make_history, slash_completer
from plastic.cli.chat.render import JsonRenderer, RichRenderer, format_status
from plastic.cli.chat.session import ChatOptions, ChatSession
from plastic.cli.main import main  # noqa: F401  (registers every command on `app`)
from plastic.models.checkpoint import save_model
from plastic.models.generate import Conversation, Sampling, StepEvent, StepHook
from plastic.models.spiking_lm import SpikingLM
from tests.conftest import small_config

runner = CliRunner()
SITES = {"encoder", "blocks.0.mix", "blocks.0.ffn", "blocks.1.mix", "blocks.1.ffn"}


def chat(*args: str | Path, input: str | bytes | None = None) -> str:
    """Run `plastic chat ARGS`; assert success; return stdout."""
    result = runner.invoke(app, ["chat", *map(str, args)], input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def json_lines(stdout: str) -> list[dict]:
    lines = stdout.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def ctrl_c_at_generated_token(n: int) -> StepHook:
    """A `Conversation.on_step` observer that presses Ctrl-C once the n-th reply token is
    generated (the reply then keeps n tokens)."""
    steps = 0

    def press_ctrl_c(ev: StepEvent) -> None:
        nonlocal steps
        if ev.phase == "generate":
            steps += 1
            if steps == n:
                raise KeyboardInterrupt

    return press_ctrl_c


def script(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "turns.txt"
    path.write_bytes(content)
    return path


# -- end to end -------------------------------------------------------------------------
def test_script_with_slash_commands_and_json(tmp_path: Path, small_model_dir: Path) -> None:
    turns = script(tmp_path, b"Hello there\n/st\n/help\nHow are you?\n/reset\n/quit\nnever sent\n")
    out = chat(
        "--model",
        small_model_dir,
        "--script",
        turns,
        "--json",
        "--seed",
        "3",
        "--max-new-tokens",
        "12",
    )
    objs = json_lines(out)
    assert [o["type"] for o in objs] == ["turn", "command", "command", "turn", "command", "command"]
    first, stats, help_, second, reset, quit_ = objs
    for turn in (first, second):
        assert isinstance(turn["reply"], str)
        assert 0 < turn["tokens"] <= 12
        assert turn["tokens_per_s"] > 0
        assert 0.0 <= turn["sparsity"] <= 1.0
        assert set(turn["rates"]) == SITES
        assert turn["stop"] in {"blank_line", "max_new_tokens", "eos"}
    assert first["user"] == "Hello there" and first["prompt_tokens"] == len(b"Hello there\n\n")
    assert second["position"] == first["position"] + second["prompt_tokens"] + second["tokens"]
    assert stats["command"] == "stats" and stats["ok"]  # prefix /st resolved
    assert set(stats["conversation_rates"]) == SITES
    assert stats["last_turn_rates"] == first["rates"]
    assert {"/help", "/reset", "/stats", "/quit"} <= set(help_["commands"])
    assert reset["command"] == "reset" and reset["position"] == 1
    assert quit_["command"] == "quit"  # and nothing after /quit was run


def test_prompt_one_shot_streams_reply_and_status(small_model_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "chat",
            "--model",
            str(small_model_dir),
            "--prompt",
            "Once upon a time",
            "--max-new-tokens",
            "8",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.exception
    assert result.stdout.startswith("you> Once upon a time\n")
    assert "tokens" in result.stderr and "tok/s" in result.stderr and "sparsity" in result.stderr
    one = json_lines(
        chat("--model", small_model_dir, "--prompt", "Hi", "--json", "--max-new-tokens", "8")
    )
    assert len(one) == 1 and one[0]["type"] == "turn" and one[0]["user"] == "Hi"


def test_ctrl_c_in_a_one_shot_reply_prints_it_and_exits_130(
    small_model_dir: Path, monkeypatch
) -> None:
    """`--prompt`: Ctrl-C stops the reply, which is still printed, and the command exits 130."""
    init = Conversation.__init__

    def init_with_ctrl_c(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.on_step.append(ctrl_c_at_generated_token(2))

    monkeypatch.setattr(Conversation, "__init__", init_with_ctrl_c)
    args = ["chat", "--model", str(small_model_dir), "--prompt", "Hi", "--json", "--seed", "1"]
    result = runner.invoke(app, [*args, "--max-new-tokens", "50"])
    assert result.exit_code == 130, (result.output, result.exception)
    (turn,) = json_lines(result.stdout)
    assert turn["stop"] == "interrupted" and turn["tokens"] == 2


def test_same_seed_same_replies(tmp_path: Path, small_model_dir: Path) -> None:
    turns = script(tmp_path, b"Tell me a story.\nAnd then?\n")
    args = ("--model", small_model_dir, "--script", turns, "--json", "--temperature", "1.0")
    args += ("--max-new-tokens", "20")
    a = [o["reply"] for o in json_lines(chat(*args, "--seed", "5"))]
    b = [o["reply"] for o in json_lines(chat(*args, "--seed", "5"))]
    c = [o["reply"] for o in json_lines(chat(*args, "--seed", "6"))]
    assert a == b
    assert a != c


def test_reset_really_resets(tmp_path: Path, small_model_dir: Path) -> None:
    turns = script(tmp_path, b"Hello\nHello\n/reset\nHello\n")
    args = ("--model", small_model_dir, "--script", turns, "--json", "--temperature", "0")
    objs = json_lines(chat(*args, "--max-new-tokens", "15"))
    first, second, reset, third = objs
    assert reset["position"] == 1
    assert third["position"] == first["position"]
    assert third["reply"] == first["reply"] and third["rates"] == pytest.approx(first["rates"])
    assert second["position"] > first["position"]  # without a reset the stream goes on


def test_unknown_and_ambiguous_commands_never_reach_the_model(
    tmp_path: Path, small_model_dir: Path
) -> None:
    turns = script(tmp_path, b"/frobnicate now\n/\n/stats\n")
    unknown, ambiguous, stats = json_lines(
        chat("--model", small_model_dir, "--script", turns, "--json")
    )
    assert not unknown["ok"] and "unknown command /frobnicate" in unknown["error"]
    assert not ambiguous["ok"] and "ambiguous command" in ambiguous["error"]
    assert stats["position"] == 1 and stats["turns"] == 0  # nothing was fed


def test_odd_input_never_crashes(tmp_path: Path) -> None:
    torch.manual_seed(0)  # the smallest model: a 1 MB line is a long prefill
    micro = SpikingLM(small_config(d_model=8, n_heads=2, d_ff=16, n_layers=1, t_fast=1, t_slow=0))
    save_model(micro.eval(), tmp_path / "micro")
    big = bytes((i * 7 + 3) % 251 for i in range(1 << 20)).replace(b"\n", b" ")
    turns = script(tmp_path, b"\n   \n\xff\xfe\xc3(bad utf-8\n" + big + b"\n/stats\n")
    objs = json_lines(
        chat("--model", tmp_path / "micro", "--script", turns, "--json", "--max-new-tokens", "3")
    )
    bad, huge, stats = objs  # the empty and blank lines were skipped
    assert bad["prompt_tokens"] == len(b"\xff\xfe\xc3(bad utf-8\n\n")  # raw bytes went in
    assert "\ufffd" in bad["user"]
    assert huge["prompt_tokens"] == len(big) + 2 and huge["user_bytes"] == len(big)
    assert len(huge["user"]) < 2000  # the echo is shortened; the model got everything
    assert stats["position"] == 1 + sum(o["prompt_tokens"] + o["tokens"] for o in (bad, huge))


def test_lines_from_a_pipe(small_model_dir: Path) -> None:
    out = chat(
        "--model",
        small_model_dir,
        "--json",
        "--max-new-tokens",
        "4",
        input=b"Hi\n\xff\n/quit\nignored\n",
    )
    assert [o["type"] for o in json_lines(out)] == ["turn", "turn", "command"]


def test_a_json_line_survives_any_line_splitter() -> None:
    """JSON leaves U+0085, U+2028 and U+2029 raw; str.splitlines breaks lines on them."""
    out = io.StringIO()
    JsonRenderer(out, err=Console(file=io.StringIO()))._emit({"reply": "a\x85b\u2028c\u2029d"})
    (line,) = out.getvalue().splitlines()
    assert json.loads(line) == {"reply": "a\x85b\u2028c\u2029d"}


def test_prompt_and_script_together_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", "--prompt", "x", "--script", str(tmp_path)])
    assert result.exit_code == 2


@pytest.mark.parametrize("prompt", ["", "  \n"])
def test_an_empty_prompt_is_a_usage_error_before_the_model_loads(prompt: str) -> None:
    result = runner.invoke(app, ["chat", "--prompt", prompt, "--model", "/nonexistent"])
    assert result.exit_code == 2  # a missing model would be exit 1: nothing was loaded
    assert "nothing to send" in result.output


def test_threads_option_sets_torch_and_the_kernels(small_model_dir: Path) -> None:
    from plastic.kernels_numba.threads import get_kernel_threads, set_kernel_threads

    before = (torch.get_num_threads(), get_kernel_threads())
    try:
        chat(
            "--model", small_model_dir, "--prompt", "Hi", "--max-new-tokens", "2", "--threads", "2"
        )
        assert (torch.get_num_threads(), get_kernel_threads()) == (2, 2)
        chat("--model", small_model_dir, "--prompt", "Hi", "--max-new-tokens", "2")
        assert (torch.get_num_threads(), get_kernel_threads()) == (1, 1)  # the default
    finally:
        torch.set_num_threads(before[0])
        set_kernel_threads(before[1])
    result = runner.invoke(app, ["chat", "--prompt", "x", "--threads", "0"])
    assert result.exit_code == 2


# -- the session and its parts ------------------------------------------------------------
def _session(model: SpikingLM, **options) -> tuple[ChatSession, io.StringIO]:
    out = io.StringIO()
    renderer = JsonRenderer(out, err=Console(file=io.StringIO()))
    opts = ChatOptions(sampling=Sampling(temperature=1.0), **options)
    return ChatSession(Conversation(model, seed=0), renderer, opts), out


def test_ctrl_c_stops_the_reply_and_keeps_its_tokens(small_model: SpikingLM) -> None:
    session, out = _session(small_model, max_new_tokens=50, stop=None)
    conv = session.conversation
    conv.on_step.append(ctrl_c_at_generated_token(5))
    turn = session.handle("Hello")
    assert turn.stop == "interrupted" and turn.tokens == 5
    assert conv.position == 1 + turn.prompt_tokens + 5
    conv.on_step.clear()
    after = session.handle("Still there?")  # the session goes on
    assert after.stop in ("max_new_tokens", "eos") and after.tokens > 0
    assert after.position == conv.position == turn.position + after.prompt_tokens + after.tokens
    stops = [json.loads(line)["stop"] for line in out.getvalue().splitlines()]
    assert stops == ["interrupted", after.stop]


def test_new_commands_and_status_fields_plug_in(small_model: SpikingLM) -> None:
    session, out = _session(small_model, max_new_tokens=3)

    def cmd_stop(args: str) -> CommandResult:
        """Stop something."""
        return CommandResult(f"stopped {args}", {"what": args})

    session.commands.register("stop", cmd_stop)
    session.status_fields.append(lambda turn: {"learn": "off"})
    session.handle("/stop now")
    session.handle("/st")
    session.handle("/help")
    session.handle("Hi")
    stop, ambiguous, help_, turn = (json.loads(line) for line in out.getvalue().splitlines())
    assert stop["command"] == "stop" and stop["what"] == "now"
    assert not ambiguous["ok"] and "/stats" in ambiguous["error"] and "/stop" in ambiguous["error"]
    assert help_["commands"]["/stop"] == "Stop something."
    assert turn["learn"] == "off"
    assert format_status({"tokens": 3, "tokens_per_s": 2.0, "sparsity": 0.9, "learn": "off"}) == (
        "3 tokens · 2.0 tok/s · sparsity 90.0% · learn off"
    )


def test_rich_reply_hides_the_closing_blank_line(small_model: SpikingLM) -> None:
    buf = io.StringIO()
    renderer = RichRenderer(Console(file=buf, width=200), Console(file=io.StringIO()))
    renderer.reply_start()
    for piece in ["\n", "Hi", "\n", " there", "\n", "\n"]:
        renderer.reply_text(piece)
    session, _ = _session(small_model)
    turn = session.handle("x")
    renderer.reply_end(turn, session.status(turn))
    assert buf.getvalue() == "Hi\n there\n"


def test_replies_cannot_drive_the_terminal() -> None:
    buf = io.StringIO()
    renderer = RichRenderer(Console(file=buf, width=200), Console(file=io.StringIO()))
    renderer.reply_start()
    renderer.reply_text("a\x1b[2Jb\u009bc d")
    assert buf.getvalue() == "a\u241b[2Jb\ufffdc d"


def test_history_never_fails_in_a_read_only_home(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "sub"))  # cannot be created, even by root
    assert history_file() is None
    assert type(make_history(None)).__name__ == "InMemoryHistory"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = history_file()
    assert path is not None and path.parent.is_dir()
    history = make_history(path)
    history.store_string("hello")
    history.store_string("x" * 100_000)  # pastes are not kept
    assert list(history.load_history_strings()) == ["hello"]


def test_slash_completer_offers_command_names() -> None:
    from prompt_toolkit.document import Document

    completer = slash_completer(lambda: ["/help", "/quit", "/reset", "/stats"])
    found = [c.text for c in completer.get_completions(Document("/st"), None)]
    assert found == ["/stats"]
    assert not list(completer.get_completions(Document("hello /st"), None))
