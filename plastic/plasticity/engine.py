"""`LearningEngine`: turns, guards, feedback, undo and figures on top of a `PlasticModel`.

Per-token learning happens inside `PlasticModel.forward` (see its docstring for the
order). The engine adds the turn level:

    engine.begin_turn()                         # snapshot (for /undo and the guards)
    engine.observe(conv, user_bytes)            # observed text: learn, surprise reward
    with engine.generating():                   # the model's reply: eligibility only
        for token in conv.generate(...): ...
    report = engine.end_turn()                  # update cap, drift guard -> report.events
    engine.feedback(+1)                         # /good (-1: /bad): a turn of its own
    engine.undo()                               # back to the state before the last turn

When learning happens, and from what signal:
- user turns / streams (`observe`): every token steps the rules (readout: the previous
  token's spikes paired with this token's output neuron) and gets the `surprise` reward
  (and any callback reward), applied to the weights at once;
- model turns (generation): every generated token steps the rules with the *sampled*
  token as the post spike, building eligibility; no surprise reward (no
  self-reinforcement); two-factor rules (stdp, hebb) change weights on every step
  regardless of reward (set `learn_on_generated=False` to keep them off model turns);
- after a reply: `/good` and `/bad` apply +1 / -1 once to the current eligibility
  (distal reward: the reply's last tokens are credited most, see `rewards.feedback`);
- `learning = False`: nothing changes; adapters still contribute.

Guards (GuardConfig): the rules' hard weight bounds; a cap on ||W - W_turn_start||_F per
site per turn (scaled back, also inside long turns); a snapshot per turn restored bit for
bit by `undo`; a drift guard: when a turn leaves the probe text's bits/byte more than
`drift_margin` above the frozen backbone's, the turn's weight change is halved (up to
`drift_backoff` times) until the probe is within the margin, or else the turn is
reverted. A guard that fires says so in `report.events` and in `status()`, which the chat
shows in its status line.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from plastic.plasticity.adapter import AdapterSnapshot
from plastic.plasticity.background_probe import BackgroundProbe
from plastic.plasticity.config import GuardConfig
from plastic.plasticity.prequential import BackbonePass, ScoringPass, cached_pass, scored_bits
from plastic.plasticity.probe import probe_cache_dir, probe_text

if TYPE_CHECKING:
    from plastic.models.generate import Conversation, FeedResult
    from plastic.plasticity.model import PlasticModel

TurnSnapshot = dict[str, AdapterSnapshot]


@dataclass(frozen=True)
class GuardEvent:
    """A guard that fired (or another notable engine event), for the status line."""

    kind: str  # "cap", "drift", "undo", "feedback", "reset"
    message: str
    adapter: str | None = None
    site: str | None = None


@dataclass(frozen=True)
class TurnReport:
    """What one turn (or feedback) did to the adapters."""

    turn: int
    changed: bool  # weights differ from the turn start (after the guards)
    reverted: bool  # the drift guard undid the turn
    change_norm: dict[str, float]  # "adapter/site" -> ||W - W_turn_start||_F after the guards
    probe_bpb: float | None  # probe bits/byte after the turn (None: not checked)
    probe_reference: float | None
    events: list[GuardEvent] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [event.message for event in self.events]


class LearningEngine:
    """Turn-level control of a PlasticModel's learning; see the module docstring."""

    def __init__(self, model: PlasticModel) -> None:
        self.model = model
        self._turn: TurnSnapshot | None = None  # the open turn's start
        self._last_turn_start: TurnSnapshot | None = None  # for /stats "since last turn"
        # (what it undoes, the state before it), newest last
        self._undo: deque[tuple[str, TurnSnapshot]] = deque(maxlen=max(self.guards.undo_depth, 1))
        self._feedback_value: float | None = None  # of the feedback turn now open
        self._probe_reference: float | None = None
        self._probe_reference_key: tuple[str, tuple[str, ...]] | None = None
        self._probe_pass: BackbonePass | None = None  # the backbone's reading of the probe
        self._probe_scoring: ScoringPass | None = None  # it, prepared for scoring
        self.last_probe: float | None = None
        self._background = BackgroundProbe()  # the probe scored while the reply is generated
        self.turns = 0
        self.events: list[GuardEvent] = []  # of the latest turn / command
        self.guard_events = 0

    # -- settings -----------------------------------------------------------------------
    @property
    def guards(self) -> GuardConfig:
        return self.model.guards

    @property
    def learning(self) -> bool:
        return self.model.learning

    @learning.setter
    def learning(self, value: bool) -> None:
        self.model.learning = bool(value)

    def generating(self) -> AbstractContextManager[None]:
        """Tokens fed inside (the reply) are the model's own: eligibility, no surprise.
        Meanwhile the drift guard's probe may be scored on the other core."""
        self._start_background_probe()
        return self.model.generating()

    def observing(self) -> AbstractContextManager[None]:
        """Tokens fed inside are observed text: surprise rewards apply."""
        return self.model.observing()

    # -- turns --------------------------------------------------------------------------
    def begin_turn(self) -> None:
        """Start a turn: snapshot every adapter (weights, rule and reward states)."""
        self._background.cancel()
        self.events = []
        self._turn = self._snapshot()
        self._last_turn_start = self._turn
        for observer in self.model.observers:
            observer.on_turn_begin()

    def end_turn(self) -> TurnReport:
        """Close the turn: cap its update, run the drift guard, keep it for undo."""
        start = self._turn if self._turn is not None else self._snapshot()
        self._turn = None
        self.turns += 1
        capped = self._enforce_cap(start)
        if capped:  # the state changed after the background probe started
            self._background.cancel()
        events = _merge_cap_events(self.events + capped)
        self.events = events
        changed = self._changed_since(start)
        probe = reference = None
        reverted = False
        if changed and self.guards.drift_check:
            probe, reference, fraction = self._drift_guard(start)
            if fraction == 0.0:
                reverted, changed = True, False
                message = (
                    f"drift guard: probe {probe:.3f} b/B > {reference:.3f} + "
                    f"{self.guards.drift_margin:g}: turn {self.turns} reverted"
                )
            elif fraction < 1.0:
                message = (
                    f"drift guard: probe {probe:.3f} b/B > {reference:.3f} + "
                    f"{self.guards.drift_margin:g}: turn {self.turns}'s update scaled "
                    f"to {fraction:g}"
                )
            if fraction < 1.0:
                events.append(GuardEvent("drift", message))
                self._count_guard(None)
                probe = self.last_probe
        self._background.cancel()  # a probe scored ahead for a turn that changed nothing
        if changed:
            what = f"turn {self.turns}"
            if self._feedback_value is not None:
                what += f" ({'/good' if self._feedback_value > 0 else '/bad'})"
            self._undo.append((what, start))
            for adapter in self.model.adapters.values():
                adapter.counters.turns += 1
        norms = self._change_norms(start)
        report = TurnReport(self.turns, changed, reverted, norms, probe, reference, events)
        for observer in self.model.observers:
            observer.on_turn_end(report)
        return report

    @contextmanager
    def turn(self) -> Iterator[list[TurnReport]]:
        """`with engine.turn() as report:` begin_turn ... end_turn; report[0] after."""
        reports: list[TurnReport] = []
        self.begin_turn()
        try:
            yield reports
        finally:
            reports.append(self.end_turn())

    def observe(
        self,
        conversation: Conversation,
        data: str | bytes | Iterable[int] | torch.Tensor,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> FeedResult:
        """Feed observed text (a user turn, a stream) into `conversation`, learning from it.

        Learns from the first `guards.max_learn_tokens` tokens (the rest is read with the
        adapters contributing but not learning), checks the per-turn cap every
        `guards.cap_check_tokens` tokens, and feeds token by token when a residual
        adapter learns (exact per-token semantics; then at most
        `guards.max_learn_tokens_per_token` are learnt from). Returns a FeedResult.
        """
        from plastic.models.generate import FeedResult, SiteRates

        self._background.cancel()
        ids = conversation.to_ids(data)
        total = int(ids.numel())
        per_token = self.learning and self._residual_learning()
        limit = (
            self.guards.max_learn_tokens_per_token if per_token else self.guards.max_learn_tokens
        )
        learn_n = min(total, limit) if self.learning else 0
        start = self._turn if self._turn is not None else None
        rates = SiteRates()
        t0, done = time.perf_counter(), 0

        def feed(piece: torch.Tensor, token_by_token: bool) -> None:
            nonlocal done
            result = conversation.feed(piece, token_by_token=token_by_token)
            for name, value in result.rates.sums.items():
                rates.sums[name] = rates.sums.get(name, 0.0) + value
            rates.tokens += result.rates.tokens
            done += result.tokens
            if progress is not None:
                progress(done, total)

        with self.model.observing():
            step = self.guards.cap_check_tokens
            for begin in range(0, learn_n, step):
                feed(ids[begin : min(begin + step, learn_n)], per_token)
                if start is not None:
                    self.events.extend(self._enforce_cap(start))
            if learn_n < total:
                was = self.model.learning
                self.model.learning = False
                try:
                    feed(ids[learn_n:], False)
                finally:
                    self.model.learning = was
                if learn_n:
                    self.events.append(
                        GuardEvent(
                            "cap",
                            f"learned from the first {learn_n} of {total} tokens "
                            f"(max_learn_tokens)",
                        )
                    )
        return FeedResult(done, time.perf_counter() - t0, rates)

    def feedback(self, value: float) -> TurnReport:
        """/good (+1) or /bad (-1): credit the last reply through the eligibility.

        Runs as a turn of its own (snapshot, cap, drift guard, undoable) unless a turn is
        open. report.events says whether anything was credited.
        """
        for observer in self.model.observers:
            observer.on_feedback(float(value))
        own_turn = self._turn is None
        if own_turn:
            self.begin_turn()
            self._feedback_value = float(value)
        credited = []
        for adapter in self.model.active_adapters():
            reward = adapter.rewards.on_feedback(float(value))
            if reward is None:
                continue
            for layer in adapter.layers.values():
                layer.reward(reward)
            adapter.counters.feedback_applied += 1
            adapter.counters.last_reward = reward
            credited.append((adapter.name, reward, adapter.uses_reward))
        if credited:
            parts = [
                f"{name} r={reward:+g}" + ("" if uses else " (its rule ignores rewards)")
                for name, reward, uses in credited
            ]
            self.events.append(
                GuardEvent("feedback", "credited the last reply: " + ", ".join(parts))
            )
        elif not any(a.rewards.uses_feedback for a in self.model.active_adapters()):
            self.events.append(GuardEvent("feedback", "no active adapter takes feedback"))
        else:
            self.events.append(
                GuardEvent(
                    "feedback",
                    "nothing to credit: the last reply was already credited (one /good or "
                    "/bad per reply; /undo takes the credit back)",
                )
            )
        if own_turn:
            try:
                return self.end_turn()
            finally:
                self._feedback_value = None
        return TurnReport(self.turns, False, False, {}, None, None, list(self.events))

    def undo(self) -> GuardEvent:
        """Restore the adapters to the state before the last accepted turn (bit for bit)."""
        self._background.cancel()
        self._turn = None
        if not self._undo:
            event = GuardEvent("undo", "nothing to undo")
        else:
            what, snap = self._undo.pop()
            self._restore(snap, keep_counters=False)
            left = f"; {len(self._undo)} more can be undone" if self._undo else ""
            event = GuardEvent(
                "undo", f"undid {what}: the adapters are as they were before it{left}"
            )
            self._last_turn_start = snap
        self.events = [event]
        for observer in self.model.observers:
            observer.on_undo()
        return event

    def reset(self, name: str | None = None) -> GuardEvent:
        """Adapters back to their initial weights (undoable)."""
        self._background.cancel()
        self._undo.append((f"the reset after turn {self.turns}", self._snapshot()))
        self.model.reset(name)
        event = GuardEvent("reset", "adapters reset to their initial weights (/undo reverts)")
        self.events = [event]
        for observer in self.model.observers:
            observer.on_reset()
        return event

    def snapshot(self) -> TurnSnapshot:
        """Copies of every adapter's weights, rule and reward states and counters."""
        return self._snapshot()

    def restore(self, snap: TurnSnapshot) -> None:
        """Return every adapter in `snap` to it exactly (weights bit for bit)."""
        self._background.cancel()
        self._restore(snap, keep_counters=False)

    @property
    def can_undo(self) -> int:
        """How many turns `undo` can still revert."""
        return len(self._undo)

    # -- scoring and the probe ----------------------------------------------------------
    def score(self, text: str | bytes) -> float:
        """Bits/byte of `text` under the current weights, from a fresh state; learns nothing."""
        return self.model.score(text)

    def probe(self) -> str:
        return self.guards.probe_text if self.guards.probe_text is not None else probe_text()

    def probe_score(self) -> float:
        """Bits/byte of the probe text under the current adapters.

        When no active adapter feeds the backbone (readout-like adapters only add to the
        logits), the frozen backbone's reading of the probe is computed once and only the
        adapters' part is re-run over it (`PlasticModel.replay`, exact); otherwise the
        whole model reads the probe again.
        """
        bpass = self._cached_probe_pass()
        if bpass is None:
            self.last_probe = self.model.score(self.probe())
        else:
            if self._probe_scoring is None or self._probe_scoring.bpass is not bpass:
                self._probe_scoring = ScoringPass.of(bpass)
            self.last_probe = self._probe_bits_per_byte(self._probe_scoring)
        return self.last_probe

    def _probe_bits_per_byte(self, scoring: ScoringPass) -> float:
        return float(scored_bits(self.model, scoring).sum()) / len(scoring.bpass)

    def _start_background_probe(self) -> None:
        """Score the probe on the worker thread while the reply is generated, when the
        turn's end may need it, its pass is ready and no active layer learns from the
        reply (`learns_while_generating`): see `background_probe`."""
        if self._background.pending or self._turn is None:
            return
        if not (self.learning and self.guards.drift_check):
            return
        layers = [layer for a in self.model.active_adapters() for layer in a.layers.values()]
        if not layers or any(getattr(la, "learns_while_generating", True) for la in layers):
            return
        scoring = self._probe_scoring
        if self.model.feeds_backbone() or scoring is None:
            return
        if scoring.bpass is not self._probe_pass or not self._probe_pass_current(scoring.bpass):
            return
        self._background.start(functools.partial(self._probe_bits_per_byte, scoring))

    def probe_reference(self) -> float:
        """Bits/byte of the probe text under the frozen backbone (cached per probe text and
        computed the way `probe_score` computes, so the two compare like for like)."""
        bpass = self._cached_probe_pass()
        key = (self.probe(), bpass.sites if bpass is not None else ())
        if self._probe_reference is None or self._probe_reference_key != key:
            if bpass is None:
                with self.model.disable_adapter():
                    self._probe_reference = self.model.score(self.probe())
            else:
                self._probe_reference = float(bpass.frozen_bits().sum()) / len(bpass)
            self._probe_reference_key = key
        return self._probe_reference

    def prepare(self) -> None:
        """Compute now what the drift guard needs later (the probe's backbone pass, read
        from the on-disk cache when there, its spike counts and the frozen reference), so
        that the first turn does not wait for it."""
        if self.learning and self.guards.drift_check:
            bpass = self._cached_probe_pass()
            if bpass is not None:
                self._probe_scoring = ScoringPass.of(bpass)
            self.probe_reference()
            if self._probe_scoring is not None:  # load the scoring kernels now, not in turn 1
                self._probe_bits_per_byte(self._probe_scoring)

    def _probe_pass_current(self, cached: BackbonePass | None) -> bool:
        """Whether `cached` is the backbone's pass over today's probe at the sites read."""
        return (
            cached is not None
            and cached.data == self.probe().encode("utf-8")
            and set(self.model.replay_sites()) <= set(cached.sites)
        )

    def _cached_probe_pass(self) -> BackbonePass | None:
        """The frozen backbone's pass over the probe at the sites the active adapters read
        (computed on first use, again only when the probe or the sites change); None when
        an active adapter feeds the backbone, so that a cached pass would not be exact."""
        model = self.model
        if model.feeds_backbone():
            return None
        cached = self._probe_pass
        if not self._probe_pass_current(cached):
            sites = model.replay_sites()
            data = self.probe().encode("utf-8")
            with model.disable_adapter():
                cached, _ = cached_pass(
                    model.base_model, data, probe_cache_dir(), sites or ("readout",)
                )
            self._probe_pass = cached
        return cached

    # -- figures ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Per adapter and site: weight-change norms, eligibility, rewards, rates, guards."""
        model = self.model
        last_start = self._last_turn_start
        adapters: dict[str, Any] = {}
        for name, adapter in model.adapters.items():
            sites = {}
            for site, layer in adapter.layers.items():
                syn = layer.synapses
                entry = {
                    "weight_change_since_attach": syn.change_norm(syn.initial),
                    "weight_change_last_turn": (
                        syn.change_norm(last_start[name].layers[site].weights)
                        if last_start is not None and name in last_start
                        else None
                    ),
                    "weight_norm": float(np.linalg.norm(syn.weights)),
                    "weight_range": _range(getattr(syn, "bounded_weights", syn.weights)),
                    "bounds": [syn.w_min, syn.w_max],
                    "eligibility_norm": syn.eligibility_norm(),
                    "rule_baseline": syn.rule_baseline(),
                    **layer.rates(),
                }
                sites[site] = entry
            first = next(iter(adapter.layers.values()), None)
            settings = adapter.config.effective_settings()
            settings["target_sites"] = list(adapter.layers)
            adapters[name] = {
                "kind": adapter.config.kind,
                "rule": adapter.config.rule,
                # the values in use: the rule's effective parameters, the adapter's config
                "rule_params": first.synapses.params.to_dict() if first is not None else {},
                "settings": settings,
                "enabled": adapter.enabled,
                "rewards": list(adapter.rewards.names),
                "last_reward": dict(adapter.rewards.last),
                "reward_baselines": adapter.rewards.baselines(),
                "counters": adapter.counters.to_dict(),
                "sites": sites,
            }
        return {
            "learning": model.learning,
            "turns": self.turns,
            "undo_depth": len(self._undo),
            "guard_events": self.guard_events,
            "last_bits": model.last_bits,
            "probe": {
                "reference_bpb": self._probe_reference,
                "last_bpb": self.last_probe,
                "margin": self.guards.drift_margin,
            },
            "adapters": adapters,
        }

    def status(self) -> dict[str, Any]:
        """Short fields for the chat's status line (guard messages of the latest turn)."""
        fields: dict[str, Any] = {"learn": "on" if self.learning else "off"}
        # a reward only where it can do something: learning on, a rule that uses rewards
        rewards = [
            a.counters.last_reward
            for a in self.model.active_adapters()
            if self.learning and a.uses_reward
        ]
        if rewards:
            fields["reward"] = rewards[0] if len(rewards) == 1 else rewards
        if self.last_probe is not None:
            fields["probe_bpb"] = self.last_probe
        guard = [e.message for e in self.events if e.kind in ("cap", "drift")]
        if guard:
            fields["guard"] = "; ".join(guard)
        return fields

    # -- persistence --------------------------------------------------------------------
    def save(self, directory: str | Path) -> list[Path]:
        """Save every adapter with its learning state (see `PlasticModel.save`)."""
        return self.model.save(directory)

    # -- internals ----------------------------------------------------------------------
    def _snapshot(self) -> TurnSnapshot:
        return {name: adapter.snapshot() for name, adapter in self.model.adapters.items()}

    def _restore(self, snap: TurnSnapshot, *, keep_counters: bool) -> None:
        for name, adapter in self.model.adapters.items():
            if name in snap:
                adapter.restore(snap[name], counters=not keep_counters)

    def _changed_since(self, snap: TurnSnapshot) -> bool:
        return any(
            name in snap and not adapter.weights_equal(snap[name])
            for name, adapter in self.model.adapters.items()
        )

    def _change_norms(self, snap: TurnSnapshot) -> dict[str, float]:
        norms = {}
        for name, adapter in self.model.adapters.items():
            if name not in snap:
                continue
            for site, layer in adapter.layers.items():
                norms[f"{name}/{site}"] = layer.synapses.change_norm(
                    snap[name].layers[site].weights
                )
        return norms

    def _enforce_cap(self, snap: TurnSnapshot) -> list[GuardEvent]:
        events = []
        limit = self.guards.max_turn_update
        for name, adapter in self.model.adapters.items():
            if name not in snap:
                continue
            for site, layer in adapter.layers.items():
                norm = layer.synapses.cap_change(snap[name].layers[site].weights, limit)
                if norm is not None:
                    message = (
                        f"update cap: {name}/{site} changed by {norm:.3g} > {limit:g}, scaled back"
                    )
                    events.append(GuardEvent("cap", message, name, site))
                    adapter.counters.guard_events += 1
                    self.guard_events += 1
        return events

    def _drift_guard(self, start: TurnSnapshot) -> tuple[float, float, float]:
        """Check the probe after a turn; back off or revert. Returns (probe, reference, f).

        f = 1: the turn is kept; 0 < f < 1: its weight change was scaled by f (halved up
        to `drift_backoff` times) to bring the probe within the margin; f = 0: the turn
        was reverted (weights, rule and reward states as at its start).
        """
        reference = self.probe_reference()
        limit = reference + self.guards.drift_margin
        first = self._background.take()  # scored while the reply was generated
        if first is None:
            first = self.probe_score()
        else:
            self.last_probe = first
        if first <= limit:
            return first, reference, 1.0
        ends = {
            (name, site): layer.weights.copy()
            for name, adapter in self.model.adapters.items()
            if name in start
            for site, layer in adapter.layers.items()
        }
        for k in range(1, self.guards.drift_backoff + 1):
            fraction = 0.5**k
            for (name, site), end in ends.items():
                begin = start[name].layers[site].weights
                self.model.adapters[name].layers[site].synapses.blend(begin, end, fraction)
            if self.probe_score() <= limit:
                return first, reference, fraction
        self._restore(start, keep_counters=True)
        self.last_probe = None
        return first, reference, 0.0

    def _count_guard(self, name: str | None) -> None:
        self.guard_events += 1
        for adapter_name, adapter in self.model.adapters.items():
            if name is None or adapter_name == name:
                adapter.counters.guard_events += 1

    def _residual_learning(self) -> bool:
        """Whether an active layer's weights are read inside the backbone's parallel pass."""
        return self.model.feeds_backbone()


def _range(weights: np.ndarray) -> list[float | None]:
    """[min, max] of the weights ([None, None] when there are none yet)."""
    if weights.size == 0:
        return [None, None]
    return [float(weights.min()), float(weights.max())]


def _merge_cap_events(events: list[GuardEvent]) -> list[GuardEvent]:
    """Keep only the latest cap event per adapter site (a long turn may cap many times)."""
    latest = {}
    for k, event in enumerate(events):
        if event.kind == "cap" and event.site is not None:
            latest[(event.adapter, event.site)] = k
    keep = set(latest.values())
    return [
        e for k, e in enumerate(events) if not (e.kind == "cap" and e.site is not None) or k in keep
    ]
