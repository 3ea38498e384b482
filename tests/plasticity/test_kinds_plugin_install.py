"""An adapter kind shipped by another package (entry-point group `plastic.adapters`),
installed with pip, is discovered, attaches, learns, saves and loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.plugin_install import env_with, installed_plugin_fixture

ROOT = Path(__file__).resolve().parents[2]

# A complete third-party adapter kind written against the public API only: a learnt
# per-token bias of the logits, one always-on input neuron whose plastic synapses onto
# the token neurons learn (with any registered rule) which tokens follow.
PLUGIN_MODULE = '''
"""bias: logits += scale * W[0] with W [1, V] learnt from the tokens that arrive."""
import dataclasses
import numpy as np
from plastic.plasticity.kinds import ADAPTER_API_VERSION, KindSettings
from plastic.plasticity.synapses import PlasticSynapses


@dataclasses.dataclass(frozen=True)
class BiasConfig(KindSettings):
    kind_name = "bias"
    scale: float = 1.0


class BiasLayer:
    kind = "bias"
    feeds_backbone = False
    reads_chunks = False

    def __init__(self, site, vocab_size, config):
        self.site = site
        self.scale = np.float32(config.settings.scale)
        initial = np.zeros((1, vocab_size), np.float32)
        self.synapses = PlasticSynapses(
            config.rule, config.effective_rule_params(), initial, backend=config.backend
        )
        self.pre = np.ones((1, 1), np.uint8)
        self.post = np.zeros((1, vocab_size), np.uint8)

    @property
    def weights(self):
        return self.synapses.weights

    def record(self, spikes):
        pass

    def release(self):
        pass

    def contribute(self, b, s, logits_row, live, token=-1):
        logits_row += self.scale * self.weights[0]

    def learn_transition(self, token):
        self.post[0, token] = 1
        self.synapses.step(self.pre, self.post)
        self.post[0, token] = 0

    def reward(self, value):
        self.synapses.reward(value)

    def forget_context(self):
        pass

    def reset(self):
        self.synapses.reset()

    def extra_state(self):
        return {}

    def load_extra_state(self, arrays):
        pass

    def rates(self):
        return {}

    def reset_counters(self):
        pass


class BiasKind:
    name = "bias"
    api_version = ADAPTER_API_VERSION
    summary = "a learnt per-token bias of the logits (test plugin)"
    settings = BiasConfig
    default_rule = "hebb"
    default_reward = ("feedback",)
    default_targets = ("readout",)

    def default_rule_params(self, rule):
        if rule != "hebb":
            return {}
        return {"tau_rate": 1.0, "learning_rate": 0.2, "update_interval": 1}

    def check(self, config):
        pass

    def create_layer(self, site, vocab_size, config, rng):
        return BiasLayer(site, vocab_size, config)


KIND = BiasKind()
'''

USE_PLUGIN = """
import json, sys, numpy as np, torch
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.plasticity.kinds import KINDS
from tests.plasticity.conftest import make_backbone

config = AdapterConfig(kind="bias", rule="hebb", reward=["feedback"], kind_params={"scale": 2.0})
model = PlasticModel(make_backbone())
model.add_adapter("default", config)
with model.observing():
    model(torch.tensor([[256, *b"abababab"]]))
w = model.adapters["default"].layers["readout"].weights[0]
model.save(sys.argv[1])
again = PlasticModel.from_pretrained(make_backbone(), sys.argv[1])
print(json.dumps({
    "origin": KINDS.sources()["bias"].origin,
    "learnt": sorted(int(j) for j in np.flatnonzero(w)),
    "loaded_equal": bool(np.array_equal(again.adapters["default"].layers["readout"].weights[0], w)),
    "kind_params": json.load(open(sys.argv[1] + "/adapter_config.json"))["config"]["kind_params"],
}))
"""


# pip-installed into a private target directory (not into the venv), once per module
installed_kind = installed_plugin_fixture(
    "plastic-toy-kind",
    "plastic_toy_kind",
    ("plastic.adapters", "bias", "plastic_toy_kind:KIND"),
    PLUGIN_MODULE,
)


def _run(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env_with(site, ROOT, **env),
    )


def test_an_installed_kind_attaches_learns_saves_and_loads(
    installed_kind: Path, tmp_path: Path
) -> None:
    result = _run(installed_kind, "-c", USE_PLUGIN, str(tmp_path / "bias"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["origin"] == "plastic-toy-kind 0.0.1"
    assert out["learnt"] == [ord("a"), ord("b")]  # the tokens that followed another one
    assert out["loaded_equal"]
    assert out["kind_params"] == {"scale": 2.0}


def test_an_unknown_kind_is_one_line_when_autoload_is_off(installed_kind: Path) -> None:
    code = "from plastic.plasticity import AdapterConfig; AdapterConfig(kind='bias')"
    result = _run(installed_kind, "-c", code, PLASTIC_DISABLE_PLUGIN_AUTOLOAD="1")
    assert result.returncode == 1
    assert "unknown adapter kind 'bias'; known adapter kinds: memory, readout, residual" in (
        result.stderr
    )
