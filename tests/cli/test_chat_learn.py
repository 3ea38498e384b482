"""`plastic chat --learn`: teach and probe through the CLI, /undo, /save + --adapter, errors."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from plastic.cli.app import app
from plastic.cli.chat.render import JsonRenderer
from plastic.cli.chat.session import ChatSession
from plastic.cli.main import main  # noqa: F401  (registers every command on `app`)
from plastic.models.checkpoint import save_model
from plastic.models.generate import Conversation
from plastic.models.spiking_lm import SpikingLM
from tests.cli.test_errors import assert_one_line_error, run_main
from tests.conftest import small_config
from tests.plasticity.conftest import FACT

runner = CliRunner()


def run_script(tmp_path: Path, model_dir: Path, lines: list[str], *flags: str) -> list[dict]:
    """`plastic chat --model DIR --script FILE --json FLAGS`; every stdout line as JSON."""
    script = tmp_path / "script.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["chat", "--model", str(model_dir), "--script", str(script), "--json", "--seed", "0"]
    result = runner.invoke(app, [*args, "--max-new-tokens", "8", *flags])
    assert result.exit_code == 0, (result.output, result.exception)
    return [json.loads(line) for line in result.stdout.splitlines()]


def scores(objs: list[dict]) -> list[float]:
    return [o["bits_per_byte"] for o in objs if o.get("command") == "score"]


def test_teaching_a_fact_lowers_its_score_only_with_learning_on(
    tmp_path: Path, small_model_dir: Path
) -> None:
    turns = [f"/score {FACT}", FACT, FACT, FACT, f"/score {FACT}"]
    learned = run_script(tmp_path, small_model_dir, turns, "--learn")
    before, after = scores(learned)
    assert after < before - 0.05
    assert all(o["learn"] == "on" for o in learned if o["type"] == "turn")
    frozen = run_script(tmp_path, small_model_dir, turns, "--no-learn", "--rule", "rstdp")
    assert scores(frozen) == [before, before]  # adapters attached, nothing learnt
    plain = run_script(tmp_path, small_model_dir, turns[1:2])
    assert "learn" not in plain[0]  # no adapters at all without the flags


def test_undo_restores_the_score_bit_for_bit_and_save_resumes(
    tmp_path: Path, small_model_dir: Path
) -> None:
    saved = tmp_path / "adapter"
    objs = run_script(
        tmp_path,
        small_model_dir,
        [FACT, f"/score {FACT}", FACT, "/undo", f"/score {FACT}", f"/save {saved}", "/stats"],
        "--learn",
    )
    first, after_undo = scores(objs)
    assert after_undo == first
    stats = next(o for o in objs if o.get("command") == "stats")
    site = stats["learning"]["adapters"]["default"]["sites"]["readout"]
    assert site["weight_change_since_attach"] > 0
    assert {"eligibility_norm", "weight_change_last_turn", "bounds"} <= set(site)
    assert "readout: Δw last turn" in stats["message"]
    assert (saved / "adapter_config.json").is_file()
    assert (saved / "adapter_model.safetensors").is_file()
    resumed = run_script(
        tmp_path, small_model_dir, [f"/score {FACT}"], "--adapter", str(saved), "--no-learn"
    )
    assert scores(resumed) == [first]


def test_feedback_and_learning_switch_through_commands(
    tmp_path: Path, small_model_dir: Path
) -> None:
    objs = run_script(
        tmp_path,
        small_model_dir,
        ["Hello there", "/good", "/bad", "/learn off", "/learn", "/learn sometimes", "/score"],
        "--learn",
    )
    good, bad, off, query, wrong, empty = (o for o in objs if o["type"] == "command")
    assert good["ok"] and "credited" in good["message"]
    assert bad["ok"] and "already credited" in bad["message"]
    assert off["message"] == "learning is off" and off["learn"]["learn"] == "off"
    assert query["message"] == "learning is off"
    assert not wrong["ok"] and "'on' or 'off'" in wrong["error"]
    assert not empty["ok"] and "/score needs a text" in empty["error"]


def test_learning_commands_in_a_plain_chat_say_how_to_learn(
    tmp_path: Path, small_model_dir: Path
) -> None:
    objs = run_script(tmp_path, small_model_dir, ["/good", f"/score {FACT}"])
    assert [o["type"] for o in objs] == ["command", "command"]  # nothing went to the model
    assert all(not o["ok"] and "--learn" in o["error"] for o in objs)


def test_an_adapter_of_another_backbone_is_refused_in_one_line(
    tmp_path: Path, small_model_dir: Path, capsys
) -> None:
    objs = run_script(tmp_path, small_model_dir, [FACT, f"/save {tmp_path / 'a'}"], "--learn")
    assert objs[-1]["ok"]
    torch.manual_seed(99)
    other = tmp_path / "other"
    save_model(SpikingLM(small_config()).eval(), other)
    argv = ["chat", "--model", str(other), "--adapter", str(tmp_path / "a"), "--prompt", "hi"]
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "backbone")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--learn", "--rule", "nosuchrule"], "nosuchrule"), (["--learn", "--reward", ","], "reward")],
)
def test_bad_learning_flags_fail_in_one_line(
    small_model_dir: Path, flags: list[str], needle: str, capsys
) -> None:
    code, err = run_main(["chat", "--model", str(small_model_dir), *flags, "--prompt", "x"], capsys)
    assert_one_line_error(code, err, needle)


class _InterruptedLearner:
    """A learner whose observe is cut by Ctrl-C: the session must still close the turn."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def begin_turn(self) -> None:
        self.calls.append("begin")

    def observe(self, conversation, data, *, progress=None):
        self.calls.append("observe")
        raise KeyboardInterrupt

    @contextmanager
    def generating(self):
        self.calls.append("generating")
        yield

    def end_turn(self) -> None:
        self.calls.append("end")

    def status(self) -> dict:
        return {}


def test_ctrl_c_in_a_learning_turn_still_ends_the_turn(small_model: SpikingLM) -> None:
    import io

    out = io.StringIO()
    session = ChatSession(Conversation(small_model, seed=0), JsonRenderer(out))
    learner = _InterruptedLearner()
    session.learner = learner
    result = session.turn(b"hello")
    assert learner.calls == ["begin", "observe", "end"]
    assert result.stop == "interrupted"
    assert json.loads(out.getvalue())["stop"] == "interrupted"


def test_set_changes_the_adapter_and_stats_shows_the_values_in_use(
    tmp_path: Path, small_model_dir: Path
) -> None:
    objs = run_script(
        tmp_path,
        small_model_dir,
        ["/stats"],
        "--learn",
        "--rule",
        "rstdp",
        "--set",
        "rule.learning_rate=0.05",
        "--set",
        "adapter.cache_mix=0.3",
        "--set",
        "tau_eligibility=2",  # a bare key is a rule parameter, as in `replay --set`
    )
    adapter = objs[0]["learning"]["adapters"]["default"]
    assert adapter["rule_params"]["learning_rate"] == 0.05
    assert adapter["rule_params"]["tau_eligibility"] == 2.0
    assert adapter["rule_params"]["tau_pre"] == 2.0  # the readout's default, not the rule's
    assert adapter["settings"]["cache_mix"] == 0.3
    assert adapter["settings"]["scale"] == 14.0  # effective, not null
    assert "learning_rate 0.05" in objs[0]["message"] and "cache_mix 0.3" in objs[0]["message"]
    defaults = run_script(tmp_path, small_model_dir, ["/stats"], "--learn", "--rule", "rstdp")
    used = defaults[0]["learning"]["adapters"]["default"]["rule_params"]
    shown = runner.invoke(app, ["rules", "rstdp", "--json"])
    params = {p["name"]: p for p in json.loads(shown.stdout)[0]["params"]}
    for name, value in used.items():  # `plastic rules` shows what the chat runs
        assert params[name]["adapter_defaults"]["readout"] == value, name
    memory = run_script(
        tmp_path,
        small_model_dir,
        ["/stats"],
        "--learn",
        "--set",
        "decay=0.9",
        "--set",
        "adapter.gate_tau=20",
    )
    adapter = memory[0]["learning"]["adapters"]["default"]
    assert adapter["rule_params"]["decay"] == 0.9 and adapter["rule_params"]["prior"] == 2.0
    assert adapter["settings"]["gate_tau"] == 20 and adapter["settings"]["gate_clip"] == 0.2
    assert "cache_mix" not in adapter["settings"]  # the readout's settings are not the memory's


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("rule.nope=1", "nope"),
        ("rule.learning_rate=-1", "learning_rate"),
        ("adapter.cache_mix=2", "cache_mix"),
        ("adapter.bogus=1", "no such adapter setting"),
        ("adapter.rule=stdp", "--rule"),
        ("other.x=1", "rule.KEY=VALUE"),
        ("novalue", "key=value"),
    ],
)
def test_bad_set_is_a_one_line_error(small_model_dir: Path, capsys, setting, needle) -> None:
    argv = ["chat", "--model", str(small_model_dir), "--learn", "--prompt", "hi"]
    code, err = run_main([*argv, "--set", setting], capsys)
    assert_one_line_error(code, err, needle)
