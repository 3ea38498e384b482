"""`Adapter`: one named adapter config, attached to the sites it hits, with its rewards.

An adapter owns one layer per site hit (built by its kind, see `plastic.plasticity.kinds`),
the reward sources named in its config, a seeded RNG (e.g. a residual layer's initial
weights; saved with the adapter and in its snapshots) and a few counters. It knows nothing
about hooks or turns: `PlasticModel` wires it into the backbone, `LearningEngine` snapshots
and guards it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity.config import AdapterConfig
from plastic.plasticity.kinds import AdapterLayer
from plastic.plasticity.rewards.reward_set import RewardSet
from plastic.plasticity.synapses import SynapseSnapshot
from plastic.plasticity.targeting import match_sites


@dataclass
class AdapterCounters:
    """What an adapter has done since it was created (saved with it)."""

    tokens_learned: int = 0  # transitions the rule stepped on
    rewards_applied: int = 0  # nonzero rewards applied to the weights
    feedback_applied: int = 0  # /good or /bad rewards applied
    turns: int = 0  # turns accepted by the guards
    guard_events: int = 0  # cap and drift-guard interventions
    last_reward: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterCounters:
        known = {k: data[k] for k in cls().__dict__ if k in data}
        return cls(**known)


class AdapterSnapshot(NamedTuple):
    """An adapter's weights, rule states, reward states, counters and RNG at one moment."""

    layers: dict[str, SynapseSnapshot]
    rewards: Any
    counters: dict[str, Any]
    rng: dict[str, Any] | None = None  # the RNG's bit-generator state
    extra: dict[str, dict[str, np.ndarray]] | None = None  # per site: the layer's extra_state


@dataclass
class Adapter:
    """A named adapter attached to a model's sites; build it with `Adapter.create`."""

    name: str
    config: AdapterConfig
    sites: list[str]
    layers: dict[str, AdapterLayer]
    rewards: RewardSet
    rng: np.random.Generator
    enabled: bool = True
    counters: AdapterCounters = field(default_factory=AdapterCounters)

    @classmethod
    def create(cls, name: str, config: AdapterConfig, model: SpikingLM) -> Adapter:
        """Resolve the config's sites on `model` and build one layer per site hit."""
        config.validate()
        site_names = list(model.sites.info)
        sites = match_sites(site_names, config.effective_targets(model.config.n_layers))
        rng = np.random.default_rng(config.seed)
        kind, vocab = config.kind_type, model.config.vocab_size
        layers = {
            site: kind.create_layer(model.sites.info[site], vocab, config, rng) for site in sites
        }
        rewards = RewardSet(config.reward, config.reward_params)
        return cls(name, config, sites, layers, rewards, rng)

    @property
    def uses_reward(self) -> bool:
        """Whether the rule is three-factor (rewards change the weights)."""
        return any(layer.synapses.uses_reward for layer in self.layers.values())

    def snapshot(self) -> AdapterSnapshot:
        return AdapterSnapshot(
            {site: layer.synapses.snapshot() for site, layer in self.layers.items()},
            self.rewards.snapshot(),
            self.counters.to_dict(),
            copy.deepcopy(self.rng.bit_generator.state),
            {site: layer.extra_state() for site, layer in self.layers.items()},
        )

    def restore(self, snap: AdapterSnapshot, *, counters: bool = True) -> None:
        for site, layer in self.layers.items():
            layer.synapses.restore(snap.layers[site])
        self.rewards.restore(snap.rewards)
        if snap.rng is not None:
            self.rng.bit_generator.state = copy.deepcopy(snap.rng)
        if snap.extra is not None:
            for site, layer in self.layers.items():
                layer.load_extra_state(snap.extra[site])
        if counters:
            self.counters = AdapterCounters.from_dict(snap.counters)

    def reset(self) -> None:
        """Initial weights, fresh rule and reward states, counters kept."""
        for layer in self.layers.values():
            layer.reset()
            layer.forget_context()
            layer.reset_counters()
        self.rewards.reset()

    def forget_context(self) -> None:
        for layer in self.layers.values():
            layer.forget_context()

    def weights_equal(self, snap: AdapterSnapshot) -> bool:
        """Whether every weight matrix equals the snapshot's (bit for bit)."""
        for site, layer in self.layers.items():
            layer.synapses.sync()
            if not np.array_equal(layer.weights, snap.layers[site].weights):
                return False
        return True
