"""An out-of-tree plugin package, installed with pip, is discovered and runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.plugin_install import env_with, installed_plugin_fixture

# A complete third-party rule: "anti-Hebbian" decay towards zero on coincident activity,
# written against the public API only (its own Params; the torch backend only).
PLUGIN_MODULE = '''
"""toyhebb: w <- clamp(w - rate * pre * post). A plugin for the plastic rule registry."""
import dataclasses
import numpy as np
import torch
from plastic.rules.params import RuleParams, param
from plastic.rules.protocol import RULE_API_VERSION

name = "toyhebb"
api_version = RULE_API_VERSION
summary = "Toy anti-Hebbian rule shipped by another package."
paper = "none (test plugin)"
uses_reward = False
backends = ("torch",)


@dataclasses.dataclass(frozen=True)
class Params(RuleParams):
    rate: float = param(0.1, unit="weight/spike^2", doc="decrease per coincident pair")
    w_min: float = param(0.0, unit="weight", doc="lower bound")
    w_max: float = param(1.0, unit="weight", doc="upper bound")


def params_from_dict(data):
    return Params.from_dict(data)


def init_state(n_pre, n_post, params, *, backend="torch", mask=None, device=None):
    return {"step": 0}


def step(pre, post, weights, state, params):
    w = torch.as_tensor(weights)
    pre = torch.as_tensor(np.asarray(pre, np.float32))
    post = torch.as_tensor(np.asarray(post, np.float32))
    w.copy_((w - params.rate * torch.outer(pre, post)).clamp(params.w_min, params.w_max))
    return weights, {"step": state["step"] + 1}


def apply_reward(reward, weights, state, params):
    return weights, state


def flush(weights, state, params, rows=None):
    return weights, state


def state_to_dict(state):
    return {"step": np.array([state["step"]])}


def state_from_dict(data, *, backend="torch", device=None):
    return {"step": int(data["step"][0])}
'''

USE_PLUGIN = """
import json, numpy as np
from plastic.rules import get_rule, rule_sources
rule = get_rule("toyhebb")
params = rule.params_from_dict({"rate": 0.25})
w = np.full((2, 3), 0.5, np.float32)
state = rule.init_state(2, 3, params, backend="torch")
w, state = rule.step(np.array([1, 0]), np.array([1, 1, 0]), w, state, params)
print(json.dumps({"origin": rule_sources()["toyhebb"].origin, "w": w.tolist(),
                  "state": rule.state_to_dict(state)["step"].tolist()}))
"""


# pip-installed into a private target directory (not into the venv), once per module
installed_plugin = installed_plugin_fixture(
    "plastic-toy-rule",
    "plastic_toy_rule",
    ("plastic.rules", "toyhebb", "plastic_toy_rule"),
    PLUGIN_MODULE,
)


def _env(site: Path, **extra: str) -> dict[str, str]:
    return env_with(site, **extra)


def test_installed_plugin_is_discovered_and_runs(installed_plugin: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", USE_PLUGIN],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(installed_plugin),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["origin"] == "plastic-toy-rule 0.0.1"
    assert out["w"] == [[0.25, 0.25, 0.5], [0.5, 0.5, 0.5]]
    assert out["state"] == [1]


def test_plastic_rules_lists_the_plugin(installed_plugin: Path) -> None:
    command = [sys.executable, "-m", "plastic", "rules", "--json"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=_env(installed_plugin)
    )
    assert result.returncode == 0, result.stderr
    listed = {info["name"]: info for info in json.loads(result.stdout)}
    assert sorted(listed) == ["delta_mixer", "detector_stdp", "hebb", "rstdp", "stdp", "toyhebb"]
    assert listed["toyhebb"]["origin"] == "plastic-toy-rule 0.0.1"
    assert listed["toyhebb"]["params"][0] == {
        "name": "rate",
        "default": 0.1,
        "adapter_defaults": {"readout": 0.1, "residual": 0.1},  # no kind overrides it
        "unit": "weight/spike^2",
        "doc": "decrease per coincident pair",
    }


def test_autoload_can_be_turned_off(installed_plugin: Path) -> None:
    command = [sys.executable, "-m", "plastic", "rules", "--json"]
    env = _env(installed_plugin, PLASTIC_DISABLE_PLUGIN_AUTOLOAD="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert [info["name"] for info in json.loads(result.stdout)] == [
        "delta_mixer",
        "detector_stdp",
        "hebb",
        "rstdp",
        "stdp",
    ]
