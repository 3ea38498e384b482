"""Replaying a context memory's site: its settings, its start state and its reads.

A memory learns from what its reads were given (tokens and the backbone's logits), so open
loop replay re-runs `MemoryLayer.read` on the recorded rows, in the recorded order, with
the recorded flags; with the recorded settings this reproduces every checkpoint bit for
bit. A counterfactual changes the memory's settings: `--set KEY=V` / `--set rule.KEY=V`
its rule's parameters (`detector_stdp`: decay, prior, feedback_rate) and
`--set adapter.KEY=V` its own (`MemoryConfig`: orders, mixer_rate, gate_tau, ...); its
reads are the backbone's, so they are what the chat would have given it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from plastic.errors import ConfigError, PlasticError, TraceError
from plastic.replay import schema as S

if TYPE_CHECKING:
    from plastic.plasticity.config import AdapterConfig
    from plastic.plasticity.memory import MemorySynapses
    from plastic.replay.reader import TraceReader

MEMORY_RULE = "detector_stdp"
READ_BLOCK = 1024  # rows of read_logits fetched at once


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule parameters, memory settings) of replay `--set` keys: `adapter.KEY` is a memory
    setting, `rule.KEY` or a bare `KEY` a rule parameter."""
    rule: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for key, value in params.items():
        scope, dot, name = key.partition(".")
        if dot and scope == "adapter":
            own[name] = value
        elif dot and scope == "rule":
            rule[name] = value
        elif dot:
            raise ConfigError(f"--set {key}: expected KEY, rule.KEY or adapter.KEY")
        else:
            rule[key] = value
    return rule, own


def memory_config(
    recorded: Mapping[str, Any], rule: str | None, params: Mapping[str, Any]
) -> AdapterConfig:
    """The recorded adapter config of a memory with `params` applied (see split_params)."""
    from plastic.plasticity.config import AdapterConfig
    from plastic.plasticity.config_v1 import upgrade_config

    if rule is not None and rule != recorded["rule"]:
        raise ConfigError(
            f"a context memory learns with {recorded['rule']!r} only; replay it with other "
            "settings instead (--set KEY=V for the rule, --set adapter.KEY=V for the memory)"
        )
    rule_params, own = split_params(params)
    data = upgrade_config(recorded)  # traces recorded before format version 2 included
    data["rule_params"] = {**dict(recorded.get("rule_params", {})), **rule_params}
    data["kind_params"] = {**dict(recorded.get("kind_params") or {}), **own}
    return AdapterConfig.from_dict(data)


def build_synapses(
    reader: TraceReader,
    spec: S.SiteSpec,
    session: Mapping[str, Any],
    rule: str | None,
    params: Mapping[str, Any],
) -> tuple[MemorySynapses, bool]:
    """A memory with the session's (changed) settings at its recorded start state; and
    whether that state could be loaded (a counterfactual that changes the tables' layout,
    e.g. `orders`, starts from an empty memory)."""
    from plastic.models.sites import SiteInfo
    from plastic.plasticity.memory import MemoryLayer

    config = memory_config(session["adapters"][spec.adapter], rule, params)
    info = SiteInfo(spec.site, 0, spec.n_post, "logits", 0)
    try:
        layer = MemoryLayer(info, spec.n_post, config)
    except PlasticError as exc:
        raise TraceError(f"cannot replay {spec.key} with these settings: {exc}") from None
    _, state = reader.state(spec, int(session["state"]), MEMORY_RULE)
    return layer.synapses, load_start(layer.synapses, state, bool(params))


def load_start(syn: MemorySynapses, state: Mapping[str, np.ndarray], changed: bool) -> bool:
    """Load a memory's recorded start state; with changed settings that do not fit it
    (other `orders` or `confidence_buckets`) leave the memory empty and return False."""
    try:
        syn.load(None, state)
    except PlasticError:
        if not changed:
            raise
        return False
    return True


class RecordedReads:
    """A memory site's recorded reads (tokens and logits rows), fetched a block at a time."""

    def __init__(self, reader: TraceReader, spec: S.SiteSpec) -> None:
        self.reader, self.spec = reader, spec
        self.start = self.stop = 0
        self.ids = np.zeros(0, np.int64)
        self.logits = np.zeros((0, spec.n_post), np.float32)

    def rows(self, a: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(tokens [n], logits [n, V], a writable copy) of reads a .. a + n - 1."""
        if not (self.start <= a and a + n <= self.stop):
            group = self.spec.group
            self.start, stop = a, a + max(n, READ_BLOCK)
            self.ids = self.reader.read(f"{group}/read_id", a, stop).astype(np.int64)
            self.logits = self.reader.read(f"{group}/read_logits", a, stop)
            self.stop = a + len(self.ids)
            if a + n > self.stop:
                raise TraceError(f"{self.reader.path}: reads of {self.spec.key} are missing")
        k = a - self.start
        return self.ids[k : k + n], self.logits[k : k + n].copy()


def apply_read(syn: MemorySynapses, reads: RecordedReads, a: int, n: int, flags: int) -> None:
    """Re-run one recorded live read (event MEMORY_READ) on the memory."""
    ids, logits = reads.rows(a, n)
    learn, generating = bool(flags & S.READ_LEARN), bool(flags & S.READ_GENERATING)
    syn.memory.read(0, ids, logits, True, learn, generating)


class ForgetSync:
    """Closed loop: re-applies the memory's stream boundaries that came from outside the
    recorded token stream (e.g. the chat's `/reset`, which calls `forget_context` after the
    <bos> it feeds). A boundary only changes the memory's reading of the conversation,
    which only its next read uses, so before each read the memory is restarted if the
    recording had more boundaries since the previous read than the replay did."""

    def __init__(self, reader: TraceReader, spec: S.SiteSpec, layer: Any) -> None:
        kinds = reader.read("events/kind")
        mine = kinds[reader.read("events/site") == spec.index]
        mine = mine[(mine == S.MEMORY_READ) | (mine == S.FORGET)]
        # recorded boundaries before each read (since the read before it)
        reads = np.flatnonzero(mine == S.MEMORY_READ)
        forgets = np.cumsum(mine == S.FORGET)[reads]
        self.before = np.diff(np.concatenate([[0], forgets])).tolist()
        self.layer = layer
        self.reads = 0
        self.since = 0  # boundaries the replay had since its previous read

    def on_read(self, tokens: np.ndarray, logits: np.ndarray, learn: bool, gen: bool) -> None:
        need = self.before[self.reads] if self.reads < len(self.before) else 0
        if self.since < need:
            self.layer.restart(self.layer.live)
        self.reads += 1
        self.since = 0

    def on_forget(self) -> None:
        self.since += 1
