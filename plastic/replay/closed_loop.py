"""Closed-loop replay: re-run the backbone over the recorded tokens with a (new) rule.

The recorded conversation is re-executed through the learning engine, so the adapter's
own spikes and its own rewards (from its own predictions) drive learning: user turns go
through `engine.observe` (same chunking, cap checks and learning limits as in chat), the
model's recorded replies are fed token by token inside `engine.generating()` (forced, not
sampled), and the recorded turn ends, /good, /bad, /undo and resets are applied where
they happened, with the engine's own guards. It needs the recorded backbone (checked by
content hash). With the recorded rule it reproduces the recorded weights exactly (max abs
difference <= EXACT_TOLERANCE at every recorded checkpoint, whatever the chat did: /score,
/good, /bad, /undo, a reply cut short by Ctrl-C); each checkpoint is compared as the replay
reaches it, so a replay that leaves the recording (a callback reward that read something
outside the model, a changed trace) says at which checkpoint, turn and token, and what the
chat did since the last exact one. With another rule it answers "what would this rule have
learnt from this conversation" (`ClosedLoopResult.counterfactual`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from plastic.errors import CheckpointError, TraceError
from plastic.replay import schema as S
from plastic.replay.reader import TraceReader

if TYPE_CHECKING:
    from plastic.models.spiking_lm import SpikingLM
    from plastic.plasticity.model import PlasticModel

ENGINE_EVENTS = (S.TURN_BEGIN, S.TURN_END, S.FEEDBACK, S.UNDO, S.ENGINE_RESET)


EXACT_TOLERANCE = 1e-6  # max abs weight difference of an exact closed-loop replay


@dataclass(frozen=True)
class CheckpointDiff:
    """The replayed weights against one recorded checkpoint."""

    index: int  # the checkpoint's index in the trace
    turn: int  # turns (of any kind) committed when it was taken
    token: int  # tokens read by then
    max_abs_diff: dict[str, float]  # "adapter/site" -> max |W_replayed - W_recorded|
    since: tuple[str, ...]  # what the chat did since the previous checkpoint (turn kinds)

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)


@dataclass
class ClosedLoopResult:
    model: PlasticModel
    tokens: int
    seconds: float
    final_diff: dict[str, float] = field(default_factory=dict)  # vs the last checkpoint
    checkpoints: list[CheckpointDiff] = field(default_factory=list)  # every one, in order
    counterfactual: bool = False  # another rule or parameters than recorded

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")

    @property
    def max_abs_diff(self) -> float | None:
        """The largest difference at any checkpoint (None: the trace has none)."""
        return max((c.worst for c in self.checkpoints), default=None)

    @property
    def exact(self) -> bool:
        """Every checkpoint reproduced within EXACT_TOLERANCE."""
        worst = self.max_abs_diff
        return worst is not None and worst <= EXACT_TOLERANCE

    def first_divergence(self) -> CheckpointDiff | None:
        """The first checkpoint beyond EXACT_TOLERANCE (None: none is)."""
        return next((c for c in self.checkpoints if c.worst > EXACT_TOLERANCE), None)

    def divergence_message(self) -> str | None:
        """Where the replay left the recorded weights, and what the chat did just before."""
        first = self.first_divergence()
        if first is None:
            return None
        k = self.checkpoints.index(first)
        previous = self.checkpoints[k - 1] if k > 0 else None
        start = (
            f"after checkpoint {previous.index} (turn {previous.turn}, token "
            f"{previous.token:,}, exact)"
            if previous is not None
            else "from the start"
        )
        done = ", ".join(first.since) or "nothing recorded"
        return (
            f"diverged {start} by checkpoint {first.index} (turn {first.turn}, token "
            f"{first.token:,}): max abs difference {first.worst:.3g} > {EXACT_TOLERANCE:g}; "
            f"in between the chat recorded: {done}"
        )

    def release(self) -> None:
        """Detach the replay's adapters from the backbone (their site hooks), when done."""
        for name in list(self.model.adapters):
            self.model.delete_adapter(name)

    def weights(self) -> dict[str, np.ndarray]:
        out = {}
        for name, adapter in self.model.adapters.items():
            for site, layer in adapter.layers.items():
                layer.synapses.sync()
                out[f"{name}/{site}"] = layer.weights.copy()
        return out


def check_backbone(reader: TraceReader, backbone: SpikingLM) -> None:
    """TraceError unless `backbone` is the one every session was recorded with."""
    from plastic.models.checkpoint import model_hash

    have = getattr(backbone, "content_hash", None) or model_hash(backbone)
    for session in reader.sessions or [{"backbone": reader.attrs["backbone"]}]:
        want = session["backbone"].get("content_hash")
        if want != have:
            raise TraceError(
                f"{reader.path} was recorded with backbone {str(want)[:12]}, but the model "
                f"given is {have[:12]}: pass the recorded model with --model"
            )


def build_model(
    reader: TraceReader,
    backbone: SpikingLM,
    *,
    rule: str | None = None,
    params: Mapping[str, Any] | None = None,
    load_start: bool = True,
) -> PlasticModel:
    """A PlasticModel with the trace's adapters (rule/params overridden), at the start state."""
    from plastic.plasticity.config import AdapterConfig, GuardConfig
    from plastic.plasticity.config_v1 import upgrade_config
    from plastic.plasticity.model import PlasticModel
    from plastic.rules.backends import host_backend

    session = reader.sessions[0]
    guards = GuardConfig.from_dict(reader.attrs.get("guards", {}))
    model = PlasticModel(backbone, guards=guards)
    for name, config in session["adapters"].items():
        if config.get("kind") == "memory":  # its own settings (plastic.replay.memory_replay)
            from plastic.replay.memory_replay import memory_config

            model.add_adapter(name, memory_config(config, rule, params or {}))
            continue
        data = upgrade_config(config)  # traces recorded before format version 2 included
        if rule is not None and rule != data["rule"]:
            data["rule"] = rule
            data["rule_params"] = {}
        data["rule_params"] = {**data.get("rule_params", {}), **dict(params or {})}
        if "backend" in data:  # the closed loop runs on the CPU
            data["backend"] = host_backend(data["backend"])
        model.add_adapter(name, AdapterConfig.from_dict(data))
    if load_start:
        for spec in reader.sites:
            syn = model.adapters[spec.adapter].layers[spec.site].synapses
            recorded_rule = session["adapters"][spec.adapter]["rule"]
            weights, state = reader.state(spec, int(session["state"]), recorded_rule)
            adapter = model.adapters[spec.adapter]
            if spec.records_reads:
                from plastic.replay.memory_replay import load_start

                load_start(syn, state, bool(params))
            elif syn.rule.name == recorded_rule:
                weights = np.clip(weights, syn.w_min, syn.w_max)
                syn.load(weights, state)
            else:
                syn.set_weights(np.clip(weights, syn.w_min, syn.w_max))
            context = reader.context_state(spec, int(session["state"]))
            layer = adapter.layers[spec.site]
            if context is not None:
                layer.load_extra_state({f"context.{k}": v for k, v in context.items()})
            rewards = reader.reward_state(spec, int(session["state"]))
            if rewards is not None:
                try:
                    adapter.rewards.load_state_arrays(rewards)
                except CheckpointError as exc:
                    raise TraceError(f"{reader.path}: {exc}") from None
    return model


def closed_loop(
    reader: TraceReader,
    backbone: SpikingLM,
    *,
    rule: str | None = None,
    params: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ClosedLoopResult:
    """Re-run the recorded conversation through the engine (see the module docstring)."""
    from plastic.models.generate import Conversation
    from plastic.models.tokenizer import BOS

    check_backbone(reader, backbone)
    if not reader.sessions:
        raise TraceError(f"{reader.path}: no committed session: nothing to replay")
    model = build_model(reader, backbone, rule=rule, params=params)
    for spec in reader.sites:
        if spec.records_reads:  # boundaries from outside the token stream (/reset)
            from plastic.replay.memory_replay import ForgetSync

            layer = model.adapters[spec.adapter].layers[spec.site]
            layer.observers.append(ForgetSync(reader, spec, layer))
    engine = model.engine
    ids = reader.read("tokens/id").astype(np.int64)
    flags = reader.read("tokens/flags")
    kinds = reader.read("events/kind")
    at = reader.read("events/token")
    values = reader.read("events/value")
    t0 = time.perf_counter()
    conv = Conversation(model, seed=0)  # feeds <bos>, as the recorded conversation began
    cursor = 1 if ids.size and ids[0] == BOS else 0
    total = int(ids.size)

    def feed_to(stop: int) -> None:
        nonlocal cursor
        while cursor < stop:
            phase = "generate" if flags[cursor] & S.GENERATED else "observe"
            end = cursor + 1
            while end < stop and bool(flags[end] & S.GENERATED) == (phase == "generate"):
                if phase == "generate" and flags[end] & S.PASS_START:
                    break
                if ids[end] == BOS:
                    break
                end += 1
            run = ids[cursor:end]
            engine.learning = bool(flags[cursor] & S.LEARNING)
            if run.size == 1 and run[0] == BOS:
                conv.reset()
            elif phase == "observe":
                engine.observe(conv, run.tolist())
            else:
                with engine.generating():
                    conv.feed(run.tolist(), token_by_token=True)
            cursor = end
            if progress is not None:
                progress(cursor, total)

    checkpoints = reader.checkpoints()
    turn_kinds = reader.read("turns/kind")
    turn_ends = reader.read("turns/end_token")
    result = ClosedLoopResult(model, total, 0.0, counterfactual=_is_counterfactual(reader, model))
    pending = list(checkpoints)

    def compare_due(before_event: int | None) -> None:
        """Compare every checkpoint taken before engine event `before_event` (None: all)."""
        while pending and (before_event is None or pending[0].event <= before_event):
            point = pending.pop(0)
            turn_end = int(turn_ends[point.turn - 1]) if point.turn > 0 else 0
            feed_to(min(max(turn_end, cursor), total))
            first_turn = checkpoints[point.index - 1].turn if point.index > 0 else 0
            since = tuple(
                S.TURN_NAMES.get(int(k), str(k)) for k in turn_kinds[first_turn : point.turn]
            )
            result.checkpoints.append(
                CheckpointDiff(
                    point.index, point.turn, cursor, _diffs(reader, result, point), since
                )
            )

    for e in np.flatnonzero(np.isin(kinds, ENGINE_EVENTS)):
        compare_due(int(e))
        feed_to(int(at[e]))
        kind = int(kinds[e])
        if kind == S.TURN_BEGIN:
            engine.begin_turn()
        elif kind == S.TURN_END:
            engine.end_turn()
        elif kind == S.FEEDBACK:
            engine.feedback(float(values[e]))
        elif kind == S.UNDO:
            engine.undo()
        elif kind == S.ENGINE_RESET:
            engine.reset()
    feed_to(total)
    compare_due(None)
    result.seconds = time.perf_counter() - t0
    if result.checkpoints:
        result.final_diff = dict(result.checkpoints[-1].max_abs_diff)
    return result


def _diffs(reader: TraceReader, result: ClosedLoopResult, point: Any) -> dict[str, float]:
    """Max |replayed - recorded| per adapter site at checkpoint `point`."""
    weights = result.weights()
    out = {}
    for spec in reader.sites:
        if spec.records_reads:
            from plastic.replay.memory_state import max_abs_diff

            layer = result.model.adapters[spec.adapter].layers[spec.site]
            mine = layer.synapses.state_arrays()
            out[spec.key] = max_abs_diff(mine, reader.memory_checkpoint(spec, point.index))
            continue
        recorded = reader.checkpoint_weights(spec, point.index)
        out[spec.key] = float(np.abs(weights[spec.key].astype(np.float64) - recorded).max())
    return out


def _is_counterfactual(reader: TraceReader, model: PlasticModel) -> bool:
    """Whether `model`'s adapters learn with another rule or parameters than recorded."""
    recorded = reader.sessions[0]["adapters"]
    for name, adapter in model.adapters.items():
        config = recorded.get(name, {})
        if config.get("rule") != adapter.config.rule:
            return True
        if dict(config.get("rule_params", {})) != dict(adapter.config.rule_params):
            return True
        if dict(config.get("kind_params") or {}) != dict(adapter.config.kind_params or {}):
            return True
    return False
