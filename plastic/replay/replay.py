"""Open-loop replay: apply a rule to the recorded spikes and rewards, in the recorded order.

For every recorded site a `PlasticSynapses` is built from the session's recorded initial
weights and loaded with its start state, then the event log is applied in order: rule
steps on the recorded rasters, rewards, syncs and row flushes, snapshots/restores (undo,
the drift guard's revert), the cap, the drift guard's blend, reset, and saved-state loads.
With the recorded rule and parameters this reproduces the recorded weights exactly on the
recorded backend (`verify` compares every checkpoint); the torch reference agrees with the
Numba kernels to float32 rounding.

Counterfactual replay (`rule`/`params` differ from the recording): the same rasters and
rewards drive another rule. The start weights are kept (clipped to the new bounds); the
rule state starts fresh when the rule differs; guard operations are re-applied (the cap
with its recorded limit, the drift guard's recorded back-off fraction, undo to the
replay's own snapshots); loads of saved states (operations the log could not express)
are skipped and counted. Later sessions that did not continue the previous one's
weights restart from their recorded start. `epochs > 1` replays the log again from the
weights reached (consolidation), without reloading session starts.

A context memory's site (kind "memory") replays its recorded reads through
`MemoryLayer.read` (`plastic.replay.memory_replay`) and compares whole states at the
checkpoints; its counterfactuals change its settings (`--set`), not its rule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plastic.errors import PlasticError, TraceError
from plastic.plasticity.config import default_rule_params
from plastic.plasticity.device_synapses import make_synapses
from plastic.plasticity.synapses import PlasticSynapses
from plastic.replay import schema as S
from plastic.replay.reader import TraceReader
from plastic.rules.backends import host_backend

EVENT_BATCH = 65536


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: rule and parameter overrides, backend, epochs, verification."""

    rule: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    # None: the recorded backend, but the CPU kernels for a site that learnt on CUDA
    # (`host_backend`); "cuda": the GPU's kernels
    backend: str | None = None
    epochs: int = 1
    verify: bool = False
    progress: Callable[[int, int], None] | None = None  # (events done, events total)
    # called as at_event(e, synapses) before event e is applied, for e in `at_events`
    # (and with e = number of events at the end), in the first epoch
    at_events: tuple[int, ...] = ()
    at_event: Callable[[int, dict[str, PlasticSynapses]], None] | None = None


@dataclass
class ReplayResult:
    """Weights reached per site ("adapter/site"), figures, and the verification."""

    synapses: dict[str, PlasticSynapses]
    exact: bool  # recorded rule and parameters (verification meaningful)
    events: int
    steps: int
    tokens: int
    seconds: float
    skipped_loads: int = 0
    checkpoint_diffs: list[dict[str, float]] = field(default_factory=list)
    final_diff: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.inf

    @property
    def max_abs_diff(self) -> float | None:
        values = [v for d in self.checkpoint_diffs for v in d.values()]
        return max(values) if values else None

    def weights(self) -> dict[str, np.ndarray]:
        out = {}
        for key, syn in self.synapses.items():
            syn.sync()
            out[key] = syn.weights.copy()
        return out


class _Rasters:
    """Reads one site's recorded rasters a chunk at a time (as uint8, as the rules want)."""

    def __init__(self, reader: TraceReader, spec: S.SiteSpec) -> None:
        self.reader, self.spec = reader, spec
        self.start = self.stop = 0
        self.pre = self.post = np.zeros((0,), np.uint8)

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.start <= index < self.stop:
            self.start = index - index % S.STEP_CHUNK
            self.stop = self.start + S.STEP_CHUNK
            group = self.spec.group
            self.pre = self.reader.read(f"{group}/pre", self.start, self.stop).view(np.uint8)
            self.post = self.reader.read(f"{group}/post", self.start, self.stop).view(np.uint8)
            self.stop = self.start + self.pre.shape[0]
            if index >= self.stop:
                raise TraceError(f"{self.reader.path}: step {index} of {self.spec.key} is missing")
        k = index - self.start
        return self.pre[k], self.post[k]


def site_rule(reader: TraceReader, spec: S.SiteSpec, session: Mapping[str, Any]) -> tuple:
    """(rule, effective params, backend) a site learnt with in a recorded session."""
    config = session["adapters"].get(spec.adapter)
    if config is None:
        raise TraceError(f"{reader.path}: session {session['index']} lacks adapter {spec.adapter}")
    return config["rule"], dict(config["rule_params"]), config.get("backend", "numba")


class OpenLoopReplay:
    """Applies a trace's event log to fresh synapses; see the module docstring."""

    def __init__(self, reader: TraceReader, options: ReplayOptions | None = None) -> None:
        self.reader = reader
        self.options = options or ReplayOptions()
        if self.options.epochs < 1:
            raise TraceError(f"epochs must be >= 1, got {self.options.epochs}")
        sessions = reader.sessions
        if not sessions:
            raise TraceError(f"{reader.path}: no committed session: nothing to replay")
        self.sessions = {int(s["index"]): s for s in reader.attrs["sessions"]}
        first = sessions[0]
        recorded = {spec.key: site_rule(reader, spec, first) for spec in reader.sites}
        self.exact = self.options.rule is None and not self.options.params
        if self.options.rule is not None:
            rules = {r for r, _, _ in recorded.values()}
            self.exact = not self.options.params and rules == {self.options.rule}
        self.synapses: dict[str, PlasticSynapses] = {}
        self.skipped_loads = 0

    # -- building synapses ----------------------------------------------------------
    def _build(self, session: Mapping[str, Any]) -> None:
        """(Re)build every site's synapses at a session start from its recorded states."""
        reader, opts = self.reader, self.options
        for spec in reader.sites:
            if spec.records_reads:
                from plastic.replay.memory_replay import build_synapses

                syn, loaded = build_synapses(reader, spec, session, opts.rule, opts.params)
                self.skipped_loads += 0 if loaded else 1
                self.synapses[spec.key] = syn  # type: ignore[assignment]
                continue
            rule, params, backend = site_rule(reader, spec, session)
            new_rule = opts.rule or rule
            if new_rule != rule:
                params = default_rule_params(spec.kind, new_rule)
            params = {**params, **dict(opts.params)}
            backend = opts.backend or host_backend(backend)
            initial, _ = reader.state(spec, int(session["initial_state"]), rule)
            weights, state = reader.state(spec, int(session["state"]), rule)
            try:
                syn = make_synapses(new_rule, params, initial, backend=backend)
            except PlasticError as exc:
                raise TraceError(
                    f"cannot replay {spec.key} with rule {new_rule!r}: {exc}"
                ) from None
            if new_rule == rule:
                syn.load(np.clip(weights, syn.w_min, syn.w_max), state)
            else:
                syn.set_weights(np.clip(weights, syn.w_min, syn.w_max))
            self.synapses[spec.key] = syn

    # -- the replay -----------------------------------------------------------------
    def run(self) -> ReplayResult:
        reader, opts = self.reader, self.options
        n_events = reader.n_events
        specs = {spec.index: spec for spec in reader.sites}
        checkpoints = reader.checkpoints()
        diffs: list[dict[str, float]] = []
        total_steps = 0
        t0 = time.perf_counter()
        for epoch in range(opts.epochs):
            rasters: dict[int, Any] = {}
            for i, spec in specs.items():
                if spec.records_reads:
                    from plastic.replay.memory_replay import RecordedReads

                    rasters[i] = RecordedReads(reader, spec)
                else:
                    rasters[i] = _Rasters(reader, spec)
            slots: dict[int, dict[int, Any]] = {i: {} for i in specs}
            pending = list(checkpoints) if (opts.verify and epoch == 0) else []
            marks = sorted(opts.at_events) if (opts.at_event and epoch == 0) else []
            for start in range(0, n_events, EVENT_BATCH):
                stop = min(start + EVENT_BATCH, n_events)
                kind = reader.read("events/kind", start, stop)
                site = reader.read("events/site", start, stop)
                a = reader.read("events/a", start, stop)
                b = reader.read("events/b", start, stop)
                value = reader.read("events/value", start, stop)
                for k in range(stop - start):
                    e = start + k
                    while pending and pending[0].event <= e:
                        diffs.append(self._compare(pending.pop(0)))
                    while marks and marks[0] <= e:
                        opts.at_event(marks.pop(0), self.synapses)  # type: ignore[misc]
                    total_steps += self._apply(
                        int(kind[k]), int(site[k]), int(a[k]), int(b[k]), float(value[k]),
                        specs, rasters, slots, epoch,
                    )  # fmt: skip
                if opts.progress is not None:
                    opts.progress(epoch * n_events + stop, opts.epochs * n_events)
            while pending:
                diffs.append(self._compare(pending.pop(0)))
            for mark in marks:
                opts.at_event(mark, self.synapses)  # type: ignore[misc]
        seconds = time.perf_counter() - t0
        result = ReplayResult(
            self.synapses,
            self.exact,
            n_events * opts.epochs,
            total_steps,
            reader.n_tokens * opts.epochs,
            seconds,
            self.skipped_loads,
            diffs,
        )
        if diffs:
            result.final_diff = diffs[-1]
        return result

    def _apply(self, kind, site, a, b, value, specs, rasters, slots, epoch) -> int:
        if kind == S.SESSION:
            session = self.sessions.get(a)
            if session is None:
                raise TraceError(f"{self.reader.path}: session {a} is not described")
            if epoch == 0 and (self.exact or not self.synapses or not session["continues"]):
                self._build(session)
            return 0
        if site < 0:
            return 0  # turn-level events drive closed-loop replay only
        spec = specs.get(site)
        if spec is None:
            raise TraceError(f"{self.reader.path}: an event names unknown site {site}")
        syn = self.synapses[spec.key]
        if kind == S.MEMORY_READ:
            from plastic.replay.memory_replay import apply_read

            apply_read(syn, rasters[site], a, b, int(value))  # type: ignore[arg-type]
            return b
        if kind == S.FORGET:
            syn.memory.forget_context()  # type: ignore[attr-defined]
            return 0
        if kind == S.STEP:
            pre, post = rasters[site].get(a)
            syn.step(pre, post)
            return 1
        if kind == S.REWARD:
            syn.reward(value)
        elif kind == S.SYNC:
            syn.sync()
        elif kind == S.FLUSH_ROWS:
            rows = self.reader.read(f"{spec.group}/flush_rows", a, a + b)
            syn.prepare_rows(rows)
        elif kind == S.SNAPSHOT:
            slots[site][a] = syn.snapshot()
        elif kind == S.MARK:
            slots[site][a] = syn.weights.copy()
        elif kind == S.RESTORE:
            syn.restore(self._slot(slots, site, a))
        elif kind == S.DROP:
            slots[site].pop(a, None)
        elif kind == S.CAP:
            syn.cap_change(self._slot(slots, site, a).weights, value)
        elif kind == S.BLEND:
            begin = self._slot(slots, site, a)
            end = self._slot(slots, site, b)
            begin = begin.weights if hasattr(begin, "weights") else begin
            end = end.weights if hasattr(end, "weights") else end
            syn.blend(begin, end, value)
        elif kind == S.SCALE:
            syn.scale(value)
        elif kind == S.RESET:
            syn.reset()
        elif kind == S.LOAD:
            if self.exact:
                rule = "detector_stdp" if spec.records_reads else syn.rule.name
                weights, state = self.reader.state(spec, a, rule)
                syn.load(weights, state)
            else:
                self.skipped_loads += 1
        else:
            raise TraceError(f"{self.reader.path}: unknown event kind {kind}")
        return 0

    def _slot(self, slots: dict[int, dict[int, Any]], site: int, slot: int) -> Any:
        try:
            return slots[site][slot]
        except KeyError:
            raise TraceError(
                f"{self.reader.path}: the log uses snapshot {slot} before taking it (corrupt)"
            ) from None

    def _compare(self, checkpoint: Any) -> dict[str, float]:
        out = {}
        for spec in self.reader.sites:
            if spec.records_reads:
                from plastic.replay.memory_state import max_abs_diff

                recorded_state = self.reader.memory_checkpoint(spec, checkpoint.index)
                mine_state = self.synapses[spec.key].state_arrays()
                out[spec.key] = max_abs_diff(mine_state, recorded_state)
                continue
            recorded = self.reader.checkpoint_weights(spec, checkpoint.index)
            mine = self.synapses[spec.key].weights
            out[spec.key] = float(np.max(np.abs(mine.astype(np.float64) - recorded)))
        return out


def replay(reader: TraceReader, options: ReplayOptions | None = None) -> ReplayResult:
    """Open-loop replay of `reader`'s trace (see the module docstring)."""
    return OpenLoopReplay(reader, options).run()
