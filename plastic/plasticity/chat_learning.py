"""The chat's side of learning: `plastic chat --learn` flags and slash commands, as calls.

`build_plastic_model` turns the CLI flags into a `PlasticModel`; `ChatLearning` gives the
REPL one method per hook and per slash command, each returning what to print, so the
REPL only dispatches:

    plastic = build_plastic_model(backbone, rule="rstdp", reward=["surprise", "feedback"])
    learn = ChatLearning(plastic, learning=True)
    conv = Conversation(plastic, ...)               # the wrapped model, not the backbone
    learn.begin_turn()                              # user turn:
    learn.observe(conv, user_bytes, progress=...)   #   instead of conv.feed(user_bytes)
    with learn.generating():                        # reply:
        for token in conv.generate(...): ...
    report = learn.end_turn()                       #   guards; report.messages() if any
    status.update(learn.status())                   # the status line
    learn.feedback(+1.0)                            # /good (the CLI parses the commands)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plastic.errors import ConfigError, RuleError
from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity.config import AdapterConfig, GuardConfig, memory_adapter_config
from plastic.plasticity.engine import TurnReport
from plastic.plasticity.model import PlasticModel

if TYPE_CHECKING:
    from plastic.models.generate import FeedResult


def build_plastic_model(
    backbone: SpikingLM,
    *,
    rule: str | None = None,
    reward: Sequence[str] | str | None = None,
    adapter_dir: str | Path | None = None,
    guards: GuardConfig | None = None,
    rule_params: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> PlasticModel:
    """The model `plastic chat --learn` runs: `--adapter DIR` resumes a saved adapter
    (whose rule and rewards must then agree with `--rule`/`--reward` if those are given);
    otherwise a fresh adapter: the context memory (rule detector_stdp, the default) or a
    readout adapter for another rule, with the given reward sources, its rule's parameters
    overridden by `rule_params` and its config fields by `settings` (`--set rule.KEY=V`,
    `--set adapter.KEY=V`), both checked before anything runs."""
    if adapter_dir is not None and (rule_params or settings):
        raise ConfigError(
            f"--set: the adapter in {adapter_dir} keeps the settings it learnt with; "
            "leave --set out to resume it"
        )
    if adapter_dir is not None:
        model = PlasticModel.from_pretrained(backbone, adapter_dir, guards=guards)
        for adapter in model.adapters.values():
            if rule is not None and adapter.config.rule != rule:
                raise ConfigError(
                    f"--rule {rule}: the adapter in {adapter_dir} learns with "
                    f"{adapter.config.rule!r}; leave --rule out to resume it"
                )
            if reward is not None and tuple(_names(reward)) != adapter.config.reward:
                raise ConfigError(
                    f"--reward {','.join(_names(reward))}: the adapter in {adapter_dir} uses "
                    f"{','.join(adapter.config.reward)}; leave --reward out to resume it"
                )
        return model
    config = adapter_config(rule, reward, rule_params, settings)
    model = PlasticModel(backbone, guards=guards)
    model.add_adapter("default", config)
    return model


def adapter_config(
    rule: str | None,
    reward: Sequence[str] | str | None,
    rule_params: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> AdapterConfig:
    """The config of the chat's new adapter; bad settings or rule parameters raise a
    one-line ConfigError / RuleError (unknown names, wrong types, out of range)."""
    from plastic.rules import get_rule

    memory = rule is None or rule == "detector_stdp"
    defaults = memory_adapter_config() if memory else AdapterConfig(rule=rule)
    fields: dict[str, Any] = {
        "kind": defaults.kind,
        "rule": defaults.rule,
        "reward": tuple(_names(reward)) if reward is not None else defaults.reward,
        "learn_on_generated": defaults.learn_on_generated,
        "rule_params": dict(rule_params or {}),
    }
    given = dict(settings or {})
    # the kind's own settings (`/stats` lists them with the shared ones)
    from dataclasses import fields as dataclass_fields

    shared = {f.name for f in dataclass_fields(AdapterConfig)}
    own = {k: given.pop(k) for k in list(given) if k not in shared}
    given["kind_params"] = {**dict(given.get("kind_params") or {}), **own}
    try:
        config = AdapterConfig(**{**fields, **given})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--set adapter.*: bad value ({exc})") from None
    try:
        get_rule(config.rule).params_from_dict(config.effective_rule_params())
    except RuleError as exc:
        raise RuleError(f"--set rule.*: {exc}" if rule_params else str(exc)) from None
    return config


def _names(value: Sequence[str] | str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [item.strip() for item in items if item.strip()]
    if not names:
        raise ConfigError("--reward needs at least one reward source name")
    return names


class ChatLearning:
    """The REPL's calls into the learning engine; see the module docstring.

    The hooks of a turn are the engine's own methods (`begin_turn`, `observe`,
    `generating`, `end_turn`, `status`: the `TurnLearner` the chat session drives);
    what this class adds is `on_reset` and what the slash commands do.
    """

    def __init__(
        self, model: PlasticModel, *, learning: bool = True, overwrite: bool = False
    ) -> None:
        self.model = model
        self.overwrite = overwrite  # /save may replace an existing directory (chat --force)
        self.engine = model.engine
        self.engine.learning = learning
        engine = self.engine
        self.begin_turn: Callable[[], None] = engine.begin_turn
        self.observe: Callable[..., FeedResult] = engine.observe
        self.generating: Callable[[], AbstractContextManager[None]] = engine.generating
        self.end_turn: Callable[[], TurnReport] = engine.end_turn
        self.status: Callable[[], dict[str, Any]] = engine.status

    def on_reset(self) -> None:
        """After `/reset` (the conversation fed <bos>, which already ends the stream)."""
        self.model.forget_context()

    # -- what the slash commands do (parsed by plastic.cli.chat.learning) ----------------
    def set_learning(self, on: bool | None) -> str:
        """Switch learning on or off (None: leave it); adapters contribute either way."""
        if on is not None:
            self.engine.learning = on
        return f"learning is {'on' if self.engine.learning else 'off'}"

    def feedback(self, value: float) -> str:
        """Credit the last reply with `value` (+1 /good, -1 /bad) through the eligibility."""
        report = self.engine.feedback(value)
        return "; ".join(report.messages()) or "no change"

    def undo(self) -> str:
        """The adapters' weights as they were before the last turn (bit for bit)."""
        return self.engine.undo().message

    def score(self, text: str) -> dict[str, float]:
        """Bits/byte of `text` under the current adapters and under the frozen backbone,
        each from a fresh state; learns nothing and leaves the conversation as it was."""
        if not text.strip():
            raise ConfigError("/score needs a text to score: /score TEXT")
        now = self.engine.score(text)
        with self.model.disable_adapter():
            frozen = self.model.score(text)
        return {
            "bits_per_byte": now,
            "frozen_bits_per_byte": frozen,
            "change_vs_frozen": now - frozen,
            "bytes": len(text.encode("utf-8")),
        }

    def save(self, directory: str, *, force: bool = False) -> str:
        """Save the adapters with their learning state (atomically; an existing directory
        is refused unless `force`, or the chat's --force, says overwrite)."""
        from plastic.plasticity.adapter_io import save_atomically

        if not directory:
            raise ConfigError("/save needs a directory: /save DIR [force]")
        hint = f"; /save {directory} force overwrites it"
        overwrite = force or self.overwrite
        written = save_atomically(self.model, directory, overwrite=overwrite, hint=hint)
        return "saved " + ", ".join(str(p) for p in written)

    def stats(self) -> dict[str, Any]:
        """The engine's figures per adapter and site (see `LearningEngine.stats`)."""
        return self.engine.stats()


def format_score(figures: dict[str, float]) -> str:
    """The one-line answer to /score: bits/byte now, its change and the frozen figure."""
    return (
        f"{figures['bits_per_byte']:.4f} bits/byte "
        f"({figures['change_vs_frozen']:+.4f} vs the frozen backbone, "
        f"{figures['frozen_bits_per_byte']:.4f})"
    )
