"""The chat's calls: --learn flags into a model, and the slash commands' behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plastic.errors import ConfigError
from plastic.models.generate import Conversation
from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model, format_score
from tests.plasticity.conftest import FACT, make_backbone, weights_of


def _turn(learn: ChatLearning, conv: Conversation, text: str) -> None:
    learn.begin_turn()
    learn.observe(conv, text.encode() + b"\n\n")
    with learn.generating():
        for _ in conv.generate(12, stop=None):
            pass
    learn.end_turn()


def test_a_chat_session_with_every_command(tmp_path: Path) -> None:
    model = build_plastic_model(make_backbone(), rule="rstdp", reward="surprise,feedback")
    learn = ChatLearning(model)
    conv = Conversation(model, seed=0)
    before = format_score(learn.score(FACT))
    assert "(+0.0000 vs the frozen backbone, " in before
    _turn(learn, conv, FACT)
    assert format_score(learn.score(FACT)) != before
    assert "credited" in learn.feedback(+1.0)
    assert "already credited" in learn.feedback(-1.0)
    assert learn.set_learning(False) == "learning is off"
    frozen_weights = weights_of(model)
    _turn(learn, conv, FACT)
    assert all(np.array_equal(frozen_weights[k], w) for k, w in weights_of(model).items())
    assert learn.set_learning(None) == "learning is off"
    assert learn.status()["learn"] == "off"
    assert learn.undo().startswith("undid turn 2 (/good)")  # /bad changed nothing
    assert "saved" in learn.save(str(tmp_path / "a"))
    stats = learn.stats()
    assert stats["adapters"]["default"]["sites"]["readout"]["weight_change_since_attach"] > 0
    with pytest.raises(ConfigError):
        learn.save("")
    with pytest.raises(ConfigError):
        learn.score("  ")
    # --adapter DIR resumes it; conflicting --rule is refused
    resumed = build_plastic_model(make_backbone(), adapter_dir=tmp_path / "a")
    assert resumed.engine.score(FACT) == model.engine.score(FACT)
    with pytest.raises(ConfigError, match="leave --rule out"):
        build_plastic_model(make_backbone(), rule="stdp", adapter_dir=tmp_path / "a")


@pytest.mark.parametrize("rule", ["stdp", "hebb"])
def test_two_factor_rules_learn_in_chat_without_rewards(rule: str) -> None:
    model = build_plastic_model(make_backbone(), rule=rule, reward="feedback")
    learn = ChatLearning(model)
    conv = Conversation(model, seed=0)
    _turn(learn, conv, FACT)
    assert any(np.any(w) for w in weights_of(model).values())
    assert "ignores rewards" in learn.feedback(+1.0)
