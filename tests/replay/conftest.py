"""Fixtures of the trace tests: a learning chat on a small saved backbone, recorded once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from plastic.models.checkpoint import resolve_model, save_model
from plastic.models.generate import Conversation
from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity import (
    AdapterConfig,
    GuardConfig,
    PlasticModel,
    callback_reward,
    register_reward,
    unregister_reward,
)
from plastic.replay.recorder import TraceRecorder
from tests.conftest import small_config
from tests.plasticity.conftest import CONTROL, FACT, chat_turn

# Guards tight enough that the cap and the drift guard both fire on the small model.
GUARDS = GuardConfig(max_turn_update=6.0, drift_margin=0.02, drift_backoff=2, cap_check_tokens=32)
HARM = {"on": False}  # while on, every observed token is rewarded +3 (breaks the probe)
# additive readout (cache_mix 0): the gated mix bounds the harm, and the guards must fire here;
# no context gate either (it would keep the harm off the probe's text)
ADAPTER = dict(
    reward=("surprise", "feedback", "harm"),
    kind_params={"sharpness": 1.0, "scale": 8.0, "cache_mix": 0.0, "context_tau": 0.0},
)


@dataclass
class Recorded:
    path: Path
    model_dir: Path
    model: PlasticModel
    events: list[str]  # guard/engine messages seen while recording


def save_small_model(out: Path) -> Path:
    torch.manual_seed(1234)
    model = SpikingLM(small_config()).eval()
    model.content_hash = save_model(model, out)
    return out


def record_chat(path: Path, model_dir: Path, *, rule: str = "rstdp", **kwargs) -> Recorded:
    """A chat with learning: taught turns, /good, /undo, /bad, a reset; guards firing."""
    with torch.no_grad():
        backbone = resolve_model(str(model_dir))
        model = PlasticModel(backbone, guards=GUARDS)
        model.add_adapter("default", AdapterConfig(rule=rule, **ADAPTER))
        engine = model.engine
        messages: list[str] = []
        recorder = TraceRecorder.attach(model, path, checkpoint_every=2, **kwargs)
        conv = Conversation(model, seed=0)
        for text in (FACT, FACT, CONTROL, FACT):
            messages += chat_turn(model, conv, text, reply_tokens=10).messages()
        messages += engine.feedback(+1).messages()
        messages.append(engine.undo().message)
        HARM["on"] = True
        messages += chat_turn(model, conv, "z" * 200, reply_tokens=10).messages()
        HARM["on"] = False
        messages += chat_turn(model, conv, FACT * 3, reply_tokens=10).messages()
        messages += engine.feedback(-1).messages()
        conv.reset()
        messages += chat_turn(model, conv, CONTROL, reply_tokens=10).messages()
        messages.append(engine.reset().message)
        messages += chat_turn(model, conv, FACT, reply_tokens=10).messages()
        recorder.close()
    return Recorded(path, model_dir, model, messages)


def record_plain(
    path: Path, model_dir: Path, *, turns: int = 2, rule: str = "rstdp", **kwargs
) -> PlasticModel:
    """A few taught turns with default guards, recorded into `path` (created or continued)."""
    with torch.no_grad():
        model = PlasticModel(resolve_model(str(model_dir)))
        model.add_adapter("default", AdapterConfig(rule=rule))
        with TraceRecorder.attach(model, path, **kwargs):
            conv = Conversation(model, seed=0)
            for _ in range(turns):
                chat_turn(model, conv, FACT, reply_tokens=8)
    return model


@pytest.fixture(scope="module")
def harm_reward():
    """The "harm" reward source (registered for the module: closed loop needs it too)."""
    source = callback_reward(lambda token, prob, event: 3.0 if HARM["on"] else None, name="harm")
    register_reward(source, replace=True)
    yield
    unregister_reward("harm")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, harm_reward) -> Recorded:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("trace")
    model_dir = save_small_model(root / "model")
    return record_chat(root / "chat.zarr", model_dir)
