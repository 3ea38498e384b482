"""`PlasticModel`: the frozen backbone wrapped (never replaced) with named plastic adapters.

It has the backbone's interface (`forward(tokens, state)`, `step`, `initial_state`,
`config`, `sites`), so a `Conversation`, `bits_per_byte` or a benchmark runs it exactly
like a `SpikingLM`; every forward pass is also one step of online learning.

Per token (B = 1, outside `frozen()`), in this fixed order (NOTES: forward -> record ->
reward -> update), for a token x that follows a token whose logits l were returned:

1. record  - the rule of every enabled adapter steps on the pairing of the previous
             token's spikes with x (readout: x's output neuron fires after them);
2. reward  - each adapter's reward sources see x with p(x) = softmax(l)[x] and the phase
             ("observe" inside `observing()`, otherwise "generate"); a reward is applied
             to the weights at once (three-factor rules; two-factor rules change weights
             in step 1 already);
3. forward - the backbone reads x; residual adapters add their output at their sites
             (and their rules step on their own pre/post spikes); readout adapters add
             their delta to the logits, reading weights that include steps 1-2.

Steps 1-2 for the first token of a forward pass happen before the backbone runs; for
the following tokens of a parallel chunk they happen after it, in order, position by
position: exact for readout adapters (the backbone never reads them), approximate for
residual ones (their weights are read by the parallel forward before the chunk's
rewards arrive), so `LearningEngine.observe` feeds token by token when a residual
adapter learns. <bos> is a stream boundary: nothing pairs across it.

`learning = False`: adapters still contribute with their current weights; nothing (not
even a reward statistic) changes. `frozen()` (used by `score`): contributions only, and
the stream's learning state is left untouched. `disable_adapter()`: the exact frozen
backbone. The backbone's parameters have requires_grad=False and are never written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from plastic.errors import ConfigError
from plastic.kernels_numba.adapter_kernels import token_bits, warm_up
from plastic.kernels_numba.threads import kernel_threads
from plastic.models.checkpoint import model_hash
from plastic.models.config import ModelConfig
from plastic.models.evaluate import stream_bits
from plastic.models.sites import SiteHook, SiteRegistry
from plastic.models.spiking_lm import LMOutput, LMState, SpikingLM
from plastic.models.tokenizer import BOS
from plastic.plasticity.adapter import Adapter
from plastic.plasticity.config import AdapterConfig, GuardConfig
from plastic.plasticity.kinds import AdapterLayer
from plastic.plasticity.observers import LearningObserver
from plastic.plasticity.rewards.protocol import GENERATE, OBSERVE, TokenEvent, TokenHistory

if TYPE_CHECKING:
    from plastic.plasticity.engine import LearningEngine

DEFAULT_ADAPTER = "default"


@dataclass(slots=True)
class StreamState:
    """The live stream as the adapters see it, mutated per token (a plain record: setting
    attributes on an nn.Module per token would cost more than the learning itself)."""

    last_logits: np.ndarray  # [V] logits returned for the latest live token
    history: TokenHistory  # recent tokens, for reward sources
    phase: str = GENERATE  # of tokens reaching the model; see observing()/generating()
    position: int = 0  # tokens since the last stream boundary
    last_bits: float = float("nan")  # surprise of the latest learnt token
    has_prev: bool = False  # a previous live token exists to pair the next one with
    live: bool = False  # inside a live forward pass
    learn_now: bool = False  # ... that learns


class PlasticModel(nn.Module):
    """A frozen `SpikingLM` with named plastic adapters; see the module docstring."""

    def __init__(self, base: SpikingLM, *, guards: GuardConfig | None = None) -> None:
        super().__init__()
        base.eval()
        base.requires_grad_(False)
        self.base_model = base
        self.backbone_hash: str = getattr(base, "content_hash", None) or model_hash(base)
        self.guards = guards or GuardConfig()
        self.adapters: dict[str, Adapter] = {}
        self.learning = True
        self.stream = StreamState(np.zeros(base.config.vocab_size, np.float32), TokenHistory())
        self._handles: dict[str, list[torch.utils.hooks.RemovableHandle]] = {}
        self._frozen = 0
        self._all_disabled = 0
        self._engine = None
        self.observers: list[LearningObserver] = []  # see plastic.plasticity.observers
        warm_up()

    # -- the backbone's interface -------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """Anything else is the backbone's (as PEFT's wrapper does): e.g. memory_horizon."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    @property
    def config(self) -> ModelConfig:
        return self.base_model.config

    @property
    def sites(self) -> SiteRegistry:
        return self.base_model.sites

    @property
    def phase(self) -> str:
        """ "observe" or "generate": how the tokens fed now are treated."""
        return self.stream.phase

    @property
    def last_bits(self) -> float:
        return self.stream.last_bits

    @property
    def content_hash(self) -> str:
        """The backbone's content hash (adapters do not change it)."""
        return self.backbone_hash

    def num_parameters(self) -> int:
        return self.base_model.num_parameters()

    def initial_state(self, batch: int = 1) -> LMState:
        return self.base_model.initial_state(batch)

    @torch.no_grad()
    def step(self, token: torch.Tensor, state: LMState | None) -> LMOutput:
        """Advance by one token per batch row (token: [B]); learns like `forward`."""
        return self.forward(token.view(-1, 1), state)

    # -- adapters (PEFT-like) -----------------------------------------------------------
    def add_adapter(self, name: str, config: AdapterConfig) -> Adapter:
        """Attach a new named adapter; several can sit on the same or different sites."""
        if name in self.adapters:
            raise ConfigError(f"an adapter named {name!r} is already attached")
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"adapter names must be plain words, got {name!r}")
        adapter = Adapter.create(name, config, self.base_model)
        self.adapters[name] = adapter
        self._handles[name] = [
            self.base_model.sites.add_hook(site, self._site_hook(adapter, layer))
            for site, layer in adapter.layers.items()
        ]
        self._break_stream()
        return adapter

    def delete_adapter(self, name: str) -> None:
        """Detach an adapter (its hooks are removed; the backbone is as before)."""
        self._get(name)
        for handle in self._handles.pop(name):
            handle.remove()
        del self.adapters[name]
        self._break_stream()

    @property
    def adapter_names(self) -> list[str]:
        return list(self.adapters)

    def active_adapters(self) -> list[Adapter]:
        """Enabled adapters (none inside `disable_adapter()`)."""
        if self._all_disabled:
            return []
        return [a for a in self.adapters.values() if a.enabled]

    def enable(self, name: str | None = None) -> None:
        """Enable one adapter, or all."""
        for adapter in self._select(name):
            adapter.enabled = True
        self._break_stream()

    def disable(self, name: str | None = None) -> None:
        """Disable one adapter, or all: it neither contributes nor learns until enabled."""
        for adapter in self._select(name):
            adapter.enabled = False
        self._break_stream()

    def reset(self, name: str | None = None) -> None:
        """Back to initial weights and fresh rule/reward states (one adapter, or all)."""
        for adapter in self._select(name):
            adapter.reset()
        self._break_stream()

    @contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Run the exact frozen backbone inside the block (A/B comparisons).

        Scoring inside (a fresh state, `frozen()`) leaves the live stream as it was; a live
        token read inside breaks it (the adapters did not see that token; see `forward`).
        """
        self._all_disabled += 1
        try:
            yield
        finally:
            self._all_disabled -= 1

    def _select(self, name: str | None) -> list[Adapter]:
        return list(self.adapters.values()) if name is None else [self._get(name)]

    def _get(self, name: str) -> Adapter:
        try:
            return self.adapters[name]
        except KeyError:
            known = ", ".join(self.adapters) or "none"
            raise ConfigError(f"no adapter named {name!r} (attached: {known})") from None

    # -- phases -------------------------------------------------------------------------
    @contextmanager
    def observing(self) -> Iterator[None]:
        """Tokens fed inside are observed text: surprise rewards apply."""
        with self._phase(OBSERVE):
            yield

    @contextmanager
    def generating(self) -> Iterator[None]:
        """Tokens fed inside are the model's own (the default): no surprise reward."""
        with self._phase(GENERATE):
            yield

    @contextmanager
    def _phase(self, phase: str) -> Iterator[None]:
        stream = self.stream
        previous, stream.phase = stream.phase, phase
        try:
            yield
        finally:
            stream.phase = previous

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Adapters contribute; nothing learns and the stream's state is left untouched."""
        self._frozen += 1
        try:
            yield
        finally:
            self._frozen -= 1

    # -- scoring ------------------------------------------------------------------------
    def score(self, text: str | bytes, *, chunk: int = 512) -> float:
        """Bits/byte of `text` read from a fresh backbone state under the current weights.

        Nothing learns and the conversation is untouched (a fresh state is used).
        """
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        if not data:
            raise ConfigError("nothing to score: the text is empty")
        with self.frozen():
            bits, _ = stream_bits(self, data, chunk=chunk)
        return bits / len(data)

    # -- the forward pass ---------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, state: LMState | None = None) -> LMOutput:
        """The backbone's forward pass plus adapters, learning per token (see module doc)."""
        active = self.active_adapters()
        if not active:
            if tokens.shape[0] == 1 and not self._frozen:  # live tokens the adapters miss
                self._break_stream()
            return self.base_model(tokens, state)
        with kernel_threads():
            return self._forward(active, tokens, state)

    def _forward(
        self, active: list[Adapter], tokens: torch.Tensor, state: LMState | None
    ) -> LMOutput:
        batch, seq = tokens.shape
        live = batch == 1 and not self._frozen
        ids = tokens[0].tolist() if live else []
        stream = self.stream
        stream.live, stream.learn_now = live, live and self.learning
        try:
            if live:
                for observer in self.observers:
                    observer.on_forward(ids, stream.phase, self.learning)
                self._enter(ids[0], stream.last_logits)
            out = self.base_model(tokens, state)
            readouts = _position_readers(active)
            chunked = _chunk_readers(active)
            if not readouts and not chunked and not live:
                return out
            logits = out.logits
            if logits.requires_grad:
                logits = logits.detach().clone()
            view = logits.numpy() if logits.device.type == "cpu" else logits.cpu().numpy()
            rows = [ids] if live else tokens.tolist()
            self._read_chunks(chunked, rows, view, live)
            self._readout_positions(readouts, rows, view, live)
            if logits.device.type != "cpu":
                logits = torch.from_numpy(view).to(logits.device)
            return LMOutput(logits, out.state, out.rates)
        finally:
            stream.live = stream.learn_now = False

    def _read_chunks(
        self, layers: list[Any], rows: list[list[int]], view: np.ndarray, live: bool
    ) -> None:
        """Layers that read whole chunks (the memory) rewrite the logits `view` [B, S, V] in
        one call per batch row, learning as they go (observed text only)."""
        if not layers:
            return
        stream = self.stream
        learn = live and stream.learn_now and stream.phase == OBSERVE
        generating = live and stream.phase == GENERATE
        for layer in layers:
            for b, row in enumerate(rows):
                layer.read(b, row, view[b], live, learn, generating)

    def _readout_positions(
        self, readouts: list[AdapterLayer], rows: list[list[int]], view: np.ndarray, live: bool
    ) -> None:
        """Steps 1-2 for positions 1.. of a forward pass and every readout's delta, in
        order, position by position, on the backbone's logits `view` [B, S, V] (in place);
        `rows`: the token ids read, per batch row."""
        stream = self.stream
        batch, seq = view.shape[0], view.shape[1]
        for s in range(seq):
            if live and s > 0:
                self._enter(rows[0][s], view[0, s - 1])
            for b in range(batch):
                for layer in readouts:
                    layer.contribute(b, s, view[b, s], live, rows[b][s])
            if live:
                stream.has_prev = True
        for layer in readouts:
            layer.release()
        if live:
            stream.last_logits[:] = view[0, seq - 1]

    def replay(self, ids: list[int], logits: np.ndarray, spikes: dict[str, np.ndarray]) -> None:
        """Run the adapters over a backbone pass computed earlier, as `forward` would.

        `ids`: the tokens of the pass (B = 1); `logits` [1, S, V] float32: the frozen
        backbone's logits for them, changed in place into what `forward` returns;
        `spikes`: site name -> that site's spikes [T, 1, S, n] of the same pass. Exact for
        readout adapters (the backbone never reads them; see the module docstring), so a
        stream can be read once by the backbone and replayed under many adapters.
        """
        if self.feeds_backbone():
            raise ConfigError("replay needs readout adapters only (residual ones feed back)")
        active = self.active_adapters()
        if not active:
            self._break_stream()
            return
        stream = self.stream
        live = not self._frozen
        stream.live, stream.learn_now = live, live and self.learning
        readouts = _position_readers(active)
        try:
            with kernel_threads():
                for layer in readouts:
                    layer.record(spikes[layer.site.name])
                if live:
                    self._enter(ids[0], stream.last_logits)
                self._read_chunks(_chunk_readers(active), [ids], logits, live)
                self._readout_positions(readouts, [ids], logits, live)
        finally:
            stream.live = stream.learn_now = False

    def feeds_backbone(self) -> bool:
        """Whether an active adapter writes into the backbone (a residual one does): then a
        backbone pass computed without the adapters cannot be replayed exactly. Layers say
        so by their `feeds_backbone` attribute."""
        return any(
            layer.feeds_backbone
            for adapter in self.active_adapters()
            for layer in adapter.layers.values()
        )

    def replay_sites(self) -> tuple[str, ...]:
        """The sites whose spikes the active adapters read, for `replay` (sorted)."""
        return tuple(
            sorted(
                {
                    layer.site.name
                    for adapter in self.active_adapters()
                    for layer in adapter.layers.values()
                }
            )
        )

    def _site_hook(self, adapter: Adapter, layer: AdapterLayer) -> SiteHook:
        """The hook of one adapter layer at its site (called inside the backbone): a layer
        that feeds the backbone returns what its site adds; the others keep the spikes."""

        def readout_hook(site, spikes: torch.Tensor) -> None:
            if adapter.enabled and not self._all_disabled:
                layer.record(spikes.detach().cpu().numpy())
            return None

        def residual_hook(site, spikes: torch.Tensor) -> torch.Tensor | None:
            if not adapter.enabled or self._all_disabled:
                return None
            stream = self.stream
            learn = stream.learn_now and (
                stream.phase == OBSERVE or adapter.config.learn_on_generated
            )
            out = layer.forward(spikes.detach().cpu().numpy(), stream.live, learn)
            return torch.from_numpy(out).to(spikes.device)

        return residual_hook if layer.feeds_backbone else readout_hook

    def _enter(self, token: int, prev_logits: np.ndarray) -> None:
        """Token `token` arrives in the live stream: learn from it (steps 1-2)."""
        if token == BOS:
            self._boundary()
            for observer in self.observers:
                observer.on_token(token, float("nan"))
            return
        stream = self.stream
        learnt = stream.has_prev and stream.learn_now
        if learnt:
            self._transition(token, prev_logits)
        stream.history.push(token)
        stream.position += 1
        for observer in self.observers:
            observer.on_token(token, stream.last_bits if learnt else float("nan"))

    def _transition(self, token: int, prev_logits: np.ndarray) -> None:
        bits, prob = token_bits(prev_logits, token)
        stream = self.stream
        stream.last_bits = bits
        event = TokenEvent(token, prob, bits, stream.phase, stream.position, stream.history)
        for adapter in self.active_adapters():
            if stream.phase == OBSERVE or adapter.config.learn_on_generated:
                for layer in adapter.layers.values():
                    layer.learn_transition(token)
                adapter.counters.tokens_learned += 1
            reward = adapter.rewards.on_token(event)
            if reward is not None and reward != 0.0:
                for layer in adapter.layers.values():
                    layer.reward(reward)
                adapter.counters.rewards_applied += 1
                adapter.counters.last_reward = reward

    def _boundary(self) -> None:
        """<bos>: a new stream begins; nothing pairs across it."""
        stream = self.stream
        stream.has_prev = False
        stream.history.clear()
        stream.position = 0
        for adapter in self.adapters.values():
            adapter.forget_context()

    def _break_stream(self) -> None:
        """The adapters' view of the stream was interrupted: do not pair across the gap."""
        if self.stream.has_prev:
            self.stream.has_prev = False
            for adapter in self.adapters.values():
                adapter.forget_context()

    def forget_context(self) -> None:
        """Call after resetting a conversation by other means than a <bos> step."""
        self._boundary()

    # -- persistence and the engine -----------------------------------------------------
    def save(self, directory: str | Path) -> list[Path]:
        """Save every adapter (PEFT layout: "default" at the root, others in subfolders)."""
        from plastic.plasticity.adapter_io import save_adapters

        return save_adapters(self, directory)

    def load(self, directory: str | Path, *, replace: bool = False) -> list[str]:
        """Load the adapters saved in `directory` onto this model; returns their names."""
        from plastic.plasticity.adapter_io import load_adapters

        names = load_adapters(self, directory, replace=replace)
        self._break_stream()
        return names

    @classmethod
    def from_pretrained(
        cls, base: SpikingLM, directory: str | Path, *, guards: GuardConfig | None = None
    ) -> PlasticModel:
        """Wrap `base` and load the adapters saved in `directory` (see `load`)."""
        model = cls(base, guards=guards)
        model.load(directory)
        return model

    @property
    def engine(self) -> LearningEngine:
        """The turn-level learning engine (guards, undo, feedback, stats) of this model."""
        if self._engine is None:
            from plastic.plasticity.engine import LearningEngine  # lazy: engine imports us

            self._engine = LearningEngine(self)
        return self._engine


def _chunk_readers(adapters: list[Adapter]) -> list[AdapterLayer]:
    """The layers of `adapters` that read whole chunks in one call (`reads_chunks`)."""
    return [
        layer
        for adapter in adapters
        for layer in adapter.layers.values()
        if layer.reads_chunks and not layer.feeds_backbone
    ]


def _position_readers(adapters: list[Adapter]) -> list[AdapterLayer]:
    """The layers of `adapters` that add to the logits position by position (`contribute`)."""
    return [
        layer
        for adapter in adapters
        for layer in adapter.layers.values()
        if not (layer.reads_chunks or layer.feeds_backbone)
    ]


def attach(
    model: SpikingLM | PlasticModel,
    config: AdapterConfig | None = None,
    *,
    name: str = DEFAULT_ADAPTER,
    guards: GuardConfig | None = None,
) -> PlasticModel:
    """Attach an adapter (default: a readout adapter learning with rstdp) to a backbone.

    A `SpikingLM` is wrapped in a new `PlasticModel`; a `PlasticModel` gets one more adapter.
    """
    plastic = model if isinstance(model, PlasticModel) else PlasticModel(model, guards=guards)
    plastic.add_adapter(name, config or AdapterConfig())
    return plastic
