"""Whole chat turns with learning on vs off, in one run: the turns part of `bench chat --learn`.

What a user waits for is the turn (read the line, reply, close the turn: guards, drift
probe), not tokens/s inside a reply. This runs the same scripted chat (`SCRIPT`: five user
turns, `max_new_tokens` new tokens a reply, fixed sampler seed) through the very session
`plastic chat` runs (`ChatSession` with a silent JSON renderer), two ways:

- "chat":  `plastic chat` (the bare backbone);
- "learn": `plastic chat --learn` (a fresh adapter, the chat's defaults, learning).

The two are interleaved `repeats` times (rotated, so that load drifts hit both alike)
after one warm-up run of each (kernels load, the drift probe's backbone pass is cached);
every "learn" run starts from a fresh adapter, so each measures the same work. Sessions
are built outside the timed turns, as `plastic chat` builds them while it loads (the
drift guard's probe prepared); the first reply of a fresh process is another measure.
ratio = learn / chat of the fastest run of each (load only slows a run; timeit's
convention), judged against MAX_RATIO; medians and every run stay in the report, and
so does the warm-up learn run (the first turns of a fresh process, cache on disk aside).
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from plastic.cli.chat.learning import attach_learning, attach_learning_unavailable
from plastic.cli.chat.render import JsonRenderer
from plastic.cli.chat.session import ChatOptions, ChatSession
from plastic.models.generate import Conversation, Sampling
from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity.chat_learning import ChatLearning, build_plastic_model

MAX_RATIO = 1.2
SCRIPT = (
    "The lighthouse keeper on Fenwick Island was named Orla Brandt.",
    "Who kept the lighthouse on Fenwick Island?",
    "She painted the tower red every spring.",
    "What colour was the tower?",
    "Tell me about Orla Brandt.",
)
HOWS = ("chat", "learn")


@dataclass(frozen=True)
class TurnBenchConfig:
    """The scripted chat: its turns, reply length, timed runs, rule, sampler."""

    turns: tuple[str, ...] = SCRIPT
    max_new_tokens: int = 20
    repeats: int = 3
    seed: int = 0
    rule: str = "detector_stdp"  # the chat's default adapter, the context memory
    sampling: Sampling = Sampling(temperature=0.8, top_k=40)
    settings: tuple[tuple[str, str], ...] = ()  # adapter settings, e.g. (("backend", "cuda"),)


def _session(model: SpikingLM, how: str, cfg: TurnBenchConfig) -> ChatSession:
    """A chat session as `plastic chat` (how="chat") or `plastic chat --learn` builds it."""
    renderer = JsonRenderer(io.StringIO(), Console(file=io.StringIO()))
    options = ChatOptions(max_new_tokens=cfg.max_new_tokens, sampling=cfg.sampling)
    if how == "chat":
        session = ChatSession(Conversation(model, seed=cfg.seed), renderer, options)
        attach_learning_unavailable(session)
        return session
    plastic = build_plastic_model(model, rule=cfg.rule, settings=dict(cfg.settings))
    learn = ChatLearning(plastic, learning=True)
    learn.engine.prepare()  # as `plastic chat` does while it loads (under its spinner)
    session = ChatSession(Conversation(learn.model, seed=cfg.seed), renderer, options)
    attach_learning(session, learn)
    return session


def _timed_turns(session: ChatSession, turns: tuple[str, ...]) -> list[float]:
    """Wall-clock seconds of each turn, as the user waits for it (input to status line)."""
    seconds = []
    for line in turns:
        t0 = time.perf_counter()
        session.handle(line)
        seconds.append(time.perf_counter() - t0)
    return seconds


def run_turn_bench(model: SpikingLM, cfg: TurnBenchConfig | None = None) -> dict[str, Any]:
    """Time the scripted chat with and without learning; see the module docstring."""
    cfg = cfg or TurnBenchConfig()
    if cfg.repeats < 1 or not cfg.turns:
        raise ValueError("repeats must be >= 1 and the script must have turns")
    warm = {how: _timed_turns(_session(model, how, cfg), cfg.turns) for how in HOWS}
    runs: dict[str, list[list[float]]] = {how: [] for how in HOWS}
    for r in range(cfg.repeats):
        for how in HOWS[r % 2 :] + HOWS[: r % 2]:
            session = _session(model, how, cfg)  # built outside the timed turns
            runs[how].append(_timed_turns(session, cfg.turns))
    totals = {how: [sum(run) for run in runs[how]] for how in HOWS}
    best = {how: min(values) for how, values in totals.items()}
    median = {how: statistics.median(values) for how, values in totals.items()}
    ratio_best = best["learn"] / best["chat"]
    return {
        "turns": len(cfg.turns),
        "max_new_tokens": cfg.max_new_tokens,
        "repeats": cfg.repeats,
        "rule": cfg.rule,
        "best_seconds": best,
        "median_seconds": median,
        "ratio_best": ratio_best,
        "ratio_median": median["learn"] / median["chat"],
        "runs_turn_seconds": runs,
        "warmup_turn_seconds": warm,
        "max_ratio": MAX_RATIO,
        "ok": ratio_best <= MAX_RATIO,
    }
