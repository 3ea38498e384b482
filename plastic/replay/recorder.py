"""`TraceRecorder`: record a learning `PlasticModel` into a trace store as it runs.

    recorder = TraceRecorder.attach(plastic, "traces.zarr")     # or: with ... as recorder
    ... chat (engine.begin_turn / observe / generate / end_turn, feedback, undo) ...
    recorder.close()

What is recorded (through `plastic.plasticity.observers`), in order, as one event log:
every rule step with its exact pre/post rasters, every reward, sync and row flush, the
snapshots and restores (undo, the drift guard's revert), the cap and the drift guard's
blend, reset and load; plus the token stream (id, phase, learning flag, forward-pass
boundaries, surprise, reward and reward baseline) and the engine's turns, feedback,
undo and reset. Weight checkpoints every `checkpoint_every` turns and at close.

The generation path only copies arrays into preallocated buffers; full chunks and
commits go to a writer thread through a bounded queue. A turn is committed (durable)
when `end_turn` returns (also after undo, reset, close): the recorder hands the turn's
data and then the commit marker to the writer and, with `durable=True`, waits for them.

Recording into an existing store continues it (a new session); another backbone or rule
is refused unless `force`. Only adapters attached before `attach` are recorded.
"""

from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from plastic import __version__
from plastic.errors import ConfigError, TraceError
from plastic.plasticity.observers import LearningObserver
from plastic.replay import schema as S
from plastic.replay.lock import LOCK_NAME, WriterLock, only_lock_file
from plastic.replay.site_tap import SiteTap
from plastic.replay.store import (
    StoreWriter,
    check_before_continuing,
    clear_unfinished,
    create_array,
    create_store,
    open_existing,
    truncate_to_commit,
    unfinished_creation,
)

if TYPE_CHECKING:
    from plastic.plasticity.model import PlasticModel


class NetworkTap:
    """Per-token spike counts of every backbone site (network/<site>), on live passes only.

    A hook at each site keeps the counts [S, n] of the latest live forward pass; when the
    next pass starts (or at a commit) they are appended for the tokens that pass recorded,
    so network rows stay aligned with tokens/* even if a pass was cut short (Ctrl-C): the
    rows of a pass whose counts are incomplete are NETWORK_UNKNOWN.
    """

    def __init__(self, recorder: TraceRecorder, model: PlasticModel, committed_tokens: int):
        self.recorder = recorder
        self.stream = model.stream
        registry = model.base_model.sites
        self.sites: dict[str, int] = {}  # name -> neurons, for the sites recorded
        self._current: dict[str, np.ndarray] = {}
        self._pending: dict[str, list[np.ndarray]] = {}
        self.pass_tokens = 0  # tokens the open pass recorded
        root = recorder.root
        for name, info in registry.info.items():
            if info.writes != "residual":
                continue  # the readout site exposes the last block's spikes again
            path = f"{S.NETWORK}/{name}"
            if path not in root:
                array = create_array(root, path, (info.size,), S.network_spec(name))
                if committed_tokens:  # a store recorded before: its earlier rows unknown
                    array.resize((committed_tokens, info.size))
            else:
                array = root[path]
                if array.shape[1:] != (info.size,):
                    continue  # another backbone's layout (--force): not recorded
                if array.shape[0] != committed_tokens:
                    array.resize((committed_tokens, info.size))  # a killed writer's tail
            self.sites[name] = info.size
            self._pending[name] = []
        self.layout = [
            {"site": name, "neurons": n, "timesteps": registry.info[name].timesteps}
            for name, n in self.sites.items()
        ]
        self.handles = [registry.add_hook(name, self._hook(name)) for name in self.sites]

    def _hook(self, name: str):
        def hook(site: Any, spikes: Any) -> None:
            if self.stream.live and spikes.shape[1] == 1:
                counts = spikes[:, 0].sum(0)  # [S, n], at most T <= 254
                self._current[name] = counts.to(dtype=torch.uint8).cpu().numpy()

        return hook

    def start_pass(self) -> None:
        """A live pass begins: the previous pass's counts go with its tokens."""
        self.end_pass()

    def end_pass(self) -> None:
        n = self.pass_tokens
        if n:
            for name, size in self.sites.items():
                rows = self._current.get(name)
                if rows is None or rows.shape[0] != n:
                    rows = np.full((n, size), S.NETWORK_UNKNOWN, np.uint8)
                self._pending[name].append(rows)
        self._current = {}
        self.pass_tokens = 0

    def flush(self) -> None:
        """Hand the counts of every finished pass to the writer (at a commit)."""
        self.end_pass()
        for name, parts in self._pending.items():
            if parts:
                rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
                self.recorder.writer.append(f"{S.NETWORK}/{name}", rows)
                self._pending[name] = []

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class TraceRecorder(LearningObserver):
    """Records a PlasticModel's learning into a trace store; see the module docstring."""

    def __init__(
        self,
        model: PlasticModel,
        path: str | Path,
        *,
        force: bool = False,
        checkpoint_every: int = 4,
        durable: bool = True,
        seed: int | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise TraceError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        if not model.adapters:
            raise TraceError("nothing to record: no adapter is attached")
        self.model = model
        self.path = Path(path)
        self.checkpoint_every = int(checkpoint_every)
        self.durable = durable
        self.closed = False
        self.error: str | None = None
        self._drops: deque[tuple[int, int]] = deque()  # (site, slot) of dead snapshots
        self.commit_seconds: list[float] = []  # wall time of each commit (turn ends)
        specs = _site_specs(model)
        attrs = _store_attrs(model, seed)
        self.root, self.committed, self.session_index = self._open(specs, attrs, force)
        self.specs = specs
        self.tokens = int(self.committed["tokens"])
        self.events = int(self.committed["events"])
        self.turn_count = int(self.committed["turns"])
        self.checkpoint_count = int(self.committed["checkpoints"])
        self.state_count = int(self.committed["states"])
        self._reset_pending()
        self.taps: list[SiteTap] = []
        for spec in specs:
            adapter = model.adapters[spec.adapter]
            tap = _tap_class(spec)(self, spec, adapter.layers[spec.site].synapses, adapter)
            tap.restore_counts(self.committed["sites"][f"site{spec.index}"])
            self.taps.append(tap)
        self._adapter = next(iter(model.adapters.values()))
        self.network = NetworkTap(self, model, self.tokens)
        self._turn_open = False
        self._in_feedback = False
        self._turns_since_checkpoint = 0
        self._turn_start = (self.tokens, self.events)
        self._pass_start = False
        self._flags = 0
        self.writer = StoreWriter(self.root)
        try:
            self._start_session(attrs)
        except BaseException:
            self.writer.close_quietly()
            self._lock.release()
            raise
        for tap in self.taps:
            tap.attach()
        model.observers.append(self)

    @classmethod
    def attach(cls, model: PlasticModel, path: str | Path, **kwargs: Any) -> TraceRecorder:
        """Start recording `model` into `path` (created, or continued)."""
        return cls(model, path, **kwargs)

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening --------------------------------------------------------------------
    def _open(
        self, specs: list[S.SiteSpec], attrs: dict[str, Any], force: bool
    ) -> tuple[Any, dict[str, Any], int]:
        path = self.path
        fresh = only_lock_file(path) or unfinished_creation(path)
        if path.exists() and not (path / "zarr.json").is_file() and not fresh:
            kind = "directory" if path.is_dir() else "file"
            raise TraceError(f"{path} exists and is not a trace store ({kind}); not touched")
        path.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(path)  # held until close(); a second writer is refused
        try:
            if unfinished_creation(path):  # a start-up killed while creating it: start over
                clear_unfinished(path, keep=LOCK_NAME)
            if (path / "zarr.json").is_file():
                check_before_continuing(path)
                root = open_existing(path)
                old = dict(root.attrs)
                _check_compatible(path, old, attrs, specs, force)
                committed = truncate_to_commit(root, specs)
                return root, committed, len(old["sessions"])
            root = create_store(path, attrs, specs)
            return root, dict(root.attrs["committed"]), 0
        except BaseException:
            self._lock.release()
            raise

    def _start_session(self, attrs: dict[str, Any]) -> None:
        """Save the initial and start states of every site, log the session, commit."""
        continues = self.checkpoint_count > 0
        for tap in self.taps:
            continues = continues and tap.matches_checkpoint(self.checkpoint_count - 1)
        initial = self._save_states(initial=True)
        start = self._save_states()
        session = {
            "index": self.session_index,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "plastic_version": __version__,
            "backbone": attrs["backbone"],
            "adapters": attrs["adapters"],
            "initial_state": initial,
            "state": start,
            "first_event": self.events,
            "first_token": self.tokens,
            "continues": bool(continues),
        }
        self._sessions = list(self.root.attrs["sessions"]) + [session]
        self.log_event(S.SESSION, -1, self.session_index)
        extra = {"sessions": self._sessions, S.NETWORK: self.network.layout}
        self._commit(S.SESSION_TURN, extra=extra)

    def _save_states(
        self, *, initial: bool = False, override: dict[int, np.ndarray] | None = None
    ) -> int:
        """Queue one saved state of every site (weights, the rule's state arrays, the reward
        state, a readout's context signature) and return its index. initial: the initial
        weights with zeroed states (replay only needs their weights, for `reset`);
        override: weights to save for some sites."""
        index = self.state_count
        for tap in self.taps:
            weights = None if override is None else override.get(tap.index)
            tap.save_state(initial=initial, weights=weights)
        self._state_events.append(self.events)
        self.state_count += 1
        return index

    # -- what the taps call ---------------------------------------------------------
    def load_state(self, tap: SiteTap, weights: np.ndarray | None = None) -> None:
        """An operation the log cannot express: save the state (W = `weights` if given,
        else the current weights), log a LOAD that sets it in replay."""
        override = None if weights is None else {tap.index: weights}
        index = self._save_states(override=override)
        self.log_event(S.LOAD, tap.index, index)

    def log_event(
        self, kind: int, site: int, a: int = -1, b: int = -1, value: float = math.nan
    ) -> None:
        """Append one event (`schema` kinds) of `site` to the pending log."""
        while self._drops:
            dropped_site, slot = self._drops.popleft()
            self._ev.append((S.DROP, dropped_site, slot, -1, math.nan, self.tokens))
            self.events += 1
        self._ev.append((kind, site, a, b, value, self.tokens))
        self.events += 1

    def drop_slot(self, site: int, slot: int) -> None:
        """A snapshot slot of `site` is dead: a DROP event precedes the next event."""
        self._drops.append((site, slot))

    def token_reward(self, site: int, value: float) -> None:
        """The reward of the current token (the first site's is the one recorded)."""
        if site == self.taps[0].index and math.isnan(self._reward_now):
            self._reward_now = value

    def fail(self, message: str) -> None:
        """Something the trace cannot record happened: the recorder reports `message`."""
        self.error = message

    def _reset_pending(self) -> None:
        self._ev: list[tuple[int, int, int, int, float, int]] = []
        self._tok_id: list[int] = []
        self._tok_flags: list[int] = []
        self._tok_bits: list[float] = []
        self._tok_reward: list[float] = []
        self._tok_base: list[float] = []
        self._reward_now = math.nan
        self._state_events: list[int] = []

    # -- LearningObserver -----------------------------------------------------------
    def on_forward(self, tokens: list[int], phase: str, learning: bool) -> None:
        self._flags = (S.GENERATED if phase == "generate" else 0) | (S.LEARNING if learning else 0)
        self._pass_start = True
        self.network.start_pass()

    def on_token(self, token: int, bits: float) -> None:
        flags = self._flags | (S.PASS_START if self._pass_start else 0)
        self._pass_start = False
        self._tok_id.append(token)
        self._tok_flags.append(flags)
        self._tok_bits.append(bits)
        self._tok_reward.append(self._reward_now)
        base = math.nan
        if not math.isnan(bits):
            base = self._adapter.rewards.baselines().get("surprise", math.nan)
        self._tok_base.append(base)
        self._reward_now = math.nan
        self.tokens += 1
        self.network.pass_tokens += 1

    def on_turn_begin(self) -> None:
        if self._in_feedback:
            return
        self._turn_open = True
        self.log_event(S.TURN_BEGIN, -1)

    def on_turn_end(self, report: Any) -> None:
        if self._in_feedback:
            self._in_feedback = False
            self._commit(S.FEEDBACK_TURN, report=report, value=self._feedback_value)
            return
        self._turn_open = False
        self.log_event(S.TURN_END, -1)
        self._commit(S.TURN, report=report)

    def on_feedback(self, value: float) -> None:
        self.log_event(S.FEEDBACK, -1, value=float(value))
        self._feedback_value = float(value)
        self._in_feedback = not self._turn_open

    def on_undo(self) -> None:
        self._turn_open = False
        self.log_event(S.UNDO, -1)
        self._commit(S.UNDO_TURN)

    def on_reset(self) -> None:
        self.log_event(S.ENGINE_RESET, -1)
        self._commit(S.RESET_TURN)

    # -- commits --------------------------------------------------------------------
    def _commit(
        self,
        kind: int,
        *,
        report: Any = None,
        value: float = math.nan,
        extra: dict[str, Any] | None = None,
        checkpoint: bool | None = None,
    ) -> None:
        """Hand the pending data, a turn row, maybe a checkpoint and the marker to the writer."""
        if self.error is not None:
            raise TraceError(f"recording into {self.path} failed: {self.error}")
        t0 = time.perf_counter()
        w = self.writer
        for tap in self.taps:
            tap.flush_steps()
        self.network.flush()
        if self._tok_id:
            w.append("tokens/id", np.asarray(self._tok_id, np.uint16))
            w.append("tokens/flags", np.asarray(self._tok_flags, np.uint8))
            w.append("tokens/bits", np.asarray(self._tok_bits, np.float32))
            w.append("tokens/reward", np.asarray(self._tok_reward, np.float32))
            w.append("tokens/baseline", np.asarray(self._tok_base, np.float32))
        if self._state_events:
            w.append("states/event", np.asarray(self._state_events, np.int64))
        if self._ev:
            ev = np.asarray(self._ev, dtype=np.float64)
            w.append("events/kind", ev[:, 0].astype(np.uint8))
            w.append("events/site", ev[:, 1].astype(np.int16))
            w.append("events/a", np.asarray([e[2] for e in self._ev], np.int64))
            w.append("events/b", np.asarray([e[3] for e in self._ev], np.int64))
            w.append("events/value", ev[:, 4])
            w.append("events/token", np.asarray([e[5] for e in self._ev], np.int64))
        start_tok, start_ev = self._turn_start
        row = {
            "kind": (np.uint8, kind),
            "start_token": (np.int64, start_tok),
            "end_token": (np.int64, self.tokens),
            "start_event": (np.int64, start_ev),
            "end_event": (np.int64, self.events),
            "value": (np.float32, value),
            "changed": (np.bool_, bool(getattr(report, "changed", False))),
            "reverted": (np.bool_, bool(getattr(report, "reverted", False))),
        }
        for name, (dtype, v) in row.items():
            w.append(f"turns/{name}", np.asarray([v], dtype=dtype))
        self.turn_count += 1
        if kind in (S.TURN, S.FEEDBACK_TURN):
            self._turns_since_checkpoint += 1
        due = self._turns_since_checkpoint >= self.checkpoint_every
        if checkpoint or (checkpoint is None and due):
            self._checkpoint()
        self._turn_start = (self.tokens, self.events)
        committed = self._committed()
        w.commit(committed, extra)
        self._reset_pending()
        if self.durable:
            w.wait()
        self.committed = committed
        self.commit_seconds.append(time.perf_counter() - t0)

    def _checkpoint(self) -> None:
        for tap in self.taps:
            tap.save_checkpoint()
        self.writer.append("checkpoints/event", np.asarray([self.events], np.int64))
        self.writer.append("checkpoints/turn", np.asarray([self.turn_count], np.int64))
        self.checkpoint_count += 1
        self._turns_since_checkpoint = 0

    def _committed(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "events": self.events,
            "turns": self.turn_count,
            "checkpoints": self.checkpoint_count,
            "states": self.state_count,
            "sites": {f"site{t.index}": t.commit_counts() for t in self.taps},
        }

    def commit(self) -> None:
        """Commit what was recorded since the last commit (a turn of kind "close")."""
        self._commit(S.CLOSE_TURN, checkpoint=True)

    def close(self) -> None:
        """Commit the rest with a final checkpoint, detach and stop the writer."""
        if self.closed:
            return
        try:
            self.commit()
        finally:
            self.closed = True
            for tap in self.taps:
                tap.detach()
            if self in self.model.observers:
                self.model.observers.remove(self)
            self.network.detach()
            try:
                self.writer.close()
            finally:
                self._lock.release()


def _tap_class(spec: S.SiteSpec) -> type[SiteTap]:
    """The tap that records a site of `spec`'s trace form."""
    if spec.records_reads:
        from plastic.replay.memory_tap import MemoryTap

        return MemoryTap
    return SiteTap


def _site_specs(model: PlasticModel) -> list[S.SiteSpec]:
    specs = []
    for name, adapter in model.adapters.items():
        for site, layer in adapter.layers.items():
            form = getattr(layer, "trace_form", None)
            index = len(specs)
            if form == S.READS:  # what it read and its variable-size states (memory_tap)
                vocab = model.config.vocab_size
                specs.append(S.SiteSpec(index, name, site, layer.kind, 0, vocab, 0, form))
            elif form == S.SYNAPSES and layer.weights.ndim == 2:
                n_pre, n_post = layer.weights.shape
                t = layer.pre.shape[0]
                specs.append(S.SiteSpec(index, name, site, layer.kind, n_pre, n_post, t, form))
            else:
                raise ConfigError(
                    f"adapter {name!r} ({layer.kind}) cannot be recorded: its layer declares "
                    f"no trace form of {', '.join(S.TRACE_FORMS)} (a weight matrix for "
                    f"{S.SYNAPSES!r})"
                )
    return specs


def _store_attrs(model: PlasticModel, seed: int | None) -> dict[str, Any]:
    adapters = {}
    for name, adapter in model.adapters.items():
        config = adapter.config.to_dict()
        config["rule_params"] = next(iter(adapter.layers.values())).synapses.params.to_dict()
        config["reward_params"] = adapter.rewards.params_dict()
        adapters[name] = config
    first = next(iter(model.adapters.values())).config
    return {
        "plastic_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backbone": {
            "content_hash": model.backbone_hash,
            "name": model.config.name,
            "vocab_size": model.config.vocab_size,
        },
        "adapters": adapters,
        "rule": first.rule,
        "reward": list(first.reward),
        "seed": first.seed if seed is None else int(seed),
        "guards": model.guards.to_dict(),
    }


def _check_compatible(
    path: Path,
    old: dict[str, Any],
    new: dict[str, Any],
    specs: list[S.SiteSpec],
    force: bool,
) -> None:
    """Refuse to continue a store of another backbone or rule (unless force) or sites."""
    old_sites = [S.SiteSpec.from_dict(s) for s in old["sites"]]
    if old_sites != specs:
        raise TraceError(
            f"{path} records other adapter sites ({', '.join(s.key for s in old_sites)}); "
            "record into a new store"
        )
    if force:
        return
    old_hash = old["backbone"].get("content_hash")
    if old_hash != new["backbone"]["content_hash"]:
        raise TraceError(
            f"{path} was recorded with backbone {str(old_hash)[:12]}, this model is "
            f"{new['backbone']['content_hash'][:12]}; use --force to record into it anyway"
        )
    for name, config in new["adapters"].items():
        old_config = old["adapters"].get(name, {})
        if old_config.get("rule") != config["rule"]:
            raise TraceError(
                f"{path} records adapter {name!r} learning with {old_config.get('rule')!r}, "
                f"not {config['rule']!r}; use --force to record into it anyway"
            )
