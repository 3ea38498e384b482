"""Chat generation speed near the start and deep into one conversation, and peak memory.

The model's token mixing carries a fixed-size recurrent state, so generating a token
should cost the same at position 2000 as at position 100. This benchmark checks it
in one run of one conversation: prefill (parallel) to the near position and keep a
snapshot, prefill on to the far position and keep another, then time generations of
`tokens` tokens from each snapshot, `repeats` times, alternating which goes first (so
a change of machine load hits both alike), and take the median tokens/s of each.
ratio = far / near; constant cost per token means a ratio near 1 (we require >= 0.9).

Memory figures: `peak_rss_mb` is the process's peak resident set size from
`resource.getrusage` (ru_maxrss; it includes the model and everything loaded before);
`rss_mb` per position is the current RSS (from /proc/self/statm, Linux only) right
after that position's runs, to show that memory does not grow with position.
"""

from __future__ import annotations

import resource
import statistics
import sys
from dataclasses import dataclass
from typing import Any

import torch

from plastic.models.generate import Conversation, Sampling
from plastic.models.spiking_lm import SpikingLM

MIN_RATIO = 0.9
FILLER = (
    b"It was a bright cold day in April, and the clocks were striking thirteen. The old "
    b"house stood at the end of the lane, its windows dark, and nobody in the village "
    b"could remember who had lived there last.\n\n"
)


@dataclass(frozen=True)
class ChatBenchConfig:
    """What to measure: positions, tokens per timed run, timed runs per position."""

    near: int = 100
    far: int = 2000
    tokens: int = 200
    repeats: int = 5
    seed: int = 0
    sampling: Sampling = Sampling(temperature=0.8, top_k=40)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mb() -> float | None:
    """Current resident set size in MiB, or None where /proc is not available."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * resource.getpagesize() / 2**20


def _prefill_to(conv: Conversation, position: int) -> None:
    """Feed filler text until the conversation is at `position`."""
    need = position - conv.position
    while need > 0:
        piece = FILLER[:need]
        conv.feed(piece)
        need -= len(piece)


def _timed_generation(conv: Conversation, tokens: int, sampling: Sampling) -> float:
    """Tokens per second of one generation of `tokens` tokens (no early stop)."""
    gen = conv.generate(tokens, sampling, stop=None)
    for _ in gen:
        pass
    return len(gen.tokens) / gen.seconds if gen.seconds > 0 else float("inf")


def run_chat_bench(model: SpikingLM, cfg: ChatBenchConfig | None = None) -> dict[str, Any]:
    """Measure generation tokens/s at two positions of one conversation; see the module doc."""
    cfg = cfg or ChatBenchConfig()
    if not 1 <= cfg.near < cfg.far:
        raise ValueError("need 1 <= near < far")
    if cfg.tokens < 1 or cfg.repeats < 1:
        raise ValueError("tokens and repeats must be >= 1")
    conv = Conversation(model, seed=cfg.seed)
    _prefill_to(conv, cfg.near)
    snapshots = {"near": conv.snapshot()}
    _prefill_to(conv, cfg.far)
    snapshots["far"] = conv.snapshot()

    conv.restore(snapshots["near"])  # warm-up: first calls allocate and pick kernels
    _timed_generation(conv, min(cfg.tokens, 20), cfg.sampling)

    runs: dict[str, list[float]] = {"near": [], "far": []}
    rss: dict[str, float | None] = {}
    for repeat in range(cfg.repeats):
        for where in ("near", "far") if repeat % 2 == 0 else ("far", "near"):
            conv.restore(snapshots[where])
            runs[where].append(_timed_generation(conv, cfg.tokens, cfg.sampling))
            rss[where] = current_rss_mb()
    median = {where: statistics.median(values) for where, values in runs.items()}
    ratio = median["far"] / median["near"] if median["near"] > 0 else float("nan")
    return {
        "positions": [
            {
                "position": getattr(cfg, where),
                "tokens_per_s": median[where],
                "runs_tokens_per_s": runs[where],
                "rss_mb": rss[where],
            }
            for where in ("near", "far")
        ],
        "ratio": ratio,
        "min_ratio": MIN_RATIO,
        "constant_cost": ratio >= MIN_RATIO,
        "tokens": cfg.tokens,
        "repeats": cfg.repeats,
        "peak_rss_mb": peak_rss_mb(),
        "memory_note": "peak_rss_mb: process peak RSS (getrusage ru_maxrss, includes the "
        "model); rss_mb: current RSS after each position's runs (/proc/self/statm)",
        "model": {"name": model.config.name, "parameters": model.num_parameters()},
        "torch_threads": torch.get_num_threads(),
    }
