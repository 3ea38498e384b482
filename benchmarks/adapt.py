"""The prequential adaptation benchmark (`plastic bench adapt`): what plasticity buys.

Protocol: the frozen backbone reads a stream byte by byte from <bos>, never reset; every
byte is predicted *before* anything learns from it; the figure is cumulative bits/byte.
Systems (all on the same backbone pass, see `plastic.plasticity.prequential`):

- `frozen`: no adapter;
- `rstdp`: the default readout adapter (`AdapterConfig()`: rule and reward as shipped);
- `stdp`: the same adapter with the two-factor rule (`rule="stdp"`, its readout defaults);
- `sham`: the `rstdp` adapter fed the rewards that `rstdp` received, shuffled in time
  (seeded): the same amount of reward, carrying no information about the bytes;
- `dyneval_adapter`: the gradient anchor (Krause et al. 2018, restricted to the adapter):
  the same weights W [n_pre, V] and logit formula (gain * sign(m)|m|^p, m the spike-
  weighted mean row) trained by Adam on the cross-entropy of each segment of
  `segment` bytes, after that segment has been scored; W clamped to the same bounds.

Readout adapters never feed the backbone, so each system replays one cached backbone pass
through the engine's own per-token code (`PlasticModel.replay`); a test checks the bits
equal those of the engine's path.

`forgetting`: bits/byte of the first `forget_bytes` of a domain-A text (Gutenberg valid)
under the weights left at the end of the stream (learning off), minus the frozen
backbone's. `cost`: wall-clock per byte of the system over the frozen backbone's, timed in
this run: `cost` against the backbone reading byte by byte (the chat's path, as the
protocol reads), `cost_vs_parallel` against its fast parallel (chunked) pass, the
cheapest way the frozen model can read a stream. Deterministic systems (frozen, rstdp,
stdp: no randomness anywhere) run once and report std 0 with `deterministic: true`;
sham (shuffle) and dyneval_adapter (random initial W, needed because the gradient of
|m|^p vanishes at W = 0 for p > 1) run once per seed.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plastic.errors import ConfigError
from plastic.models.spiking_lm import SpikingLM
from plastic.models.tokenizer import BOS
from plastic.plasticity.config import AdapterConfig
from plastic.plasticity.model import PlasticModel
from plastic.plasticity.prequential import (
    BackbonePass,
    backbone_pass,
    cached_pass,
    logits_bits,
    replay_bits,
)
from plastic.plasticity.reward_protocol import TokenEvent

SYSTEMS = ("frozen", "rstdp", "stdp", "sham", "dyneval_adapter", "dyneval_full")
DEFAULT_SYSTEMS = ("frozen", "rstdp", "stdp", "sham", "dyneval_adapter")  # dyneval_full: opt in
SEEDED = ("sham", "dyneval_adapter")
TARGETS = {"relative_gain": 0.05, "dyneval_fraction": 0.5, "forgetting": 0.01, "cost": 1.2}


@dataclass(frozen=True)
class DynevalConfig:
    """The gradient anchor's optimiser (one setting for every stream)."""

    lr: float = 0.03  # chosen on held-out text with `segment` (docs/results.md)
    segment: int = 32
    init_std: float = 0.05


@dataclass(frozen=True)
class DynevalFullConfig:
    """`dyneval_full`'s optimiser: Adam on all backbone weights (one setting for every stream)."""

    lr: float = 3e-4  # chosen on held-out text (docs/results.md)
    segment: int = 32


@dataclass(frozen=True)
class AdaptBenchConfig:
    """What to run: bytes per stream, seeds, systems, the adapter, forgetting text."""

    max_bytes: int = 100_000
    seeds: int = 3
    systems: tuple[str, ...] = DEFAULT_SYSTEMS
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    dyneval: DynevalConfig = field(default_factory=DynevalConfig)
    dyneval_full: DynevalFullConfig = field(default_factory=DynevalFullConfig)
    forget_bytes: int = 50_000
    cost_bytes: int = 400  # bytes the backbone reads byte by byte to time the chat path
    chunk: int = 512


class RecordedRewards:
    """Wraps an adapter's RewardSet and records every reward it gives (None included)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.values: list[float | None] = []

    def on_token(self, event: TokenEvent) -> float | None:
        reward = self.inner.on_token(event)
        self.values.append(reward)
        return reward

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ShuffledRewards:
    """Gives a fixed sequence of rewards, one per token, whatever the token: the sham."""

    def __init__(self, inner: Any, values: Sequence[float | None]) -> None:
        self.inner = inner
        self.values = list(values)
        self.k = 0

    def on_token(self, event: TokenEvent) -> float | None:
        self.inner.on_token(event)  # keeps the source's statistics for /stats alike
        value = self.values[self.k] if self.k < len(self.values) else None
        self.k += 1
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _adapter_run(
    model: SpikingLM,
    config: AdapterConfig,
    stream: BackbonePass,
    forget: BackbonePass | None,
    rewards: Callable[[Any], Any] | None = None,
    chunk: int = 512,
) -> dict[str, Any]:
    """Replay `stream` through one fresh adapter; bits, seconds, forgetting bits."""
    plastic = PlasticModel(model)
    adapter = plastic.add_adapter("bench", config)
    wrapper = None
    if rewards is not None:
        wrapper = rewards(adapter.rewards)
        adapter.rewards = wrapper
    t0 = time.perf_counter()
    with plastic.observing():
        bits = replay_bits(plastic, stream, chunk=chunk)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"bits": bits, "seconds": seconds, "rewards": wrapper}
    if forget is not None:
        with plastic.frozen():
            out["forget_bits"] = replay_bits(plastic, forget, chunk=chunk)
    return out


def dyneval_adapter(
    stream: BackbonePass,
    gain: float,
    sharpness: float,
    bounds: tuple[float, float],
    cfg: DynevalConfig,
    seed: int,
    forget: BackbonePass | None = None,
    site: str = "readout",
) -> dict[str, Any]:
    """Dynamic evaluation of the readout adapter's weights by Adam; see the module doc."""
    gen = torch.Generator().manual_seed(seed)
    n_pre, vocab = stream.sizes[site], stream.logits.shape[1]
    weights = (torch.randn(n_pre, vocab, generator=gen) * cfg.init_std).clamp_(*bounds)
    weights.requires_grad_(True)
    opt = torch.optim.Adam([weights], lr=cfg.lr)
    targets = torch.from_numpy(np.frombuffer(stream.data, np.uint8).astype(np.int64))

    def logits_of(start: int, stop: int, src: BackbonePass) -> torch.Tensor:
        counts = torch.from_numpy(src.spike_counts(site, start, stop))
        total = counts.sum(dim=1, keepdim=True).clamp_min(1.0)
        m = (counts / total) @ weights
        delta = gain * torch.sign(m) * m.abs().pow(sharpness)
        return torch.from_numpy(src.logits[start:stop]) + delta

    bits = np.empty(len(stream), np.float64)
    t0 = time.perf_counter()
    for start in range(0, len(stream), cfg.segment):
        stop = min(start + cfg.segment, len(stream))
        logits = logits_of(start, stop, stream)
        loss = torch.nn.functional.cross_entropy(logits, targets[start:stop], reduction="sum")
        bits[start:stop] = logits_bits(logits.detach().numpy(), targets[start:stop].numpy())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            weights.clamp_(*bounds)
    out: dict[str, Any] = {"bits": bits, "seconds": time.perf_counter() - t0}
    if forget is not None:
        with torch.no_grad():
            fb = np.empty(len(forget), np.float64)
            ft = np.frombuffer(forget.data, np.uint8)
            for start in range(0, len(forget), 4096):
                stop = min(start + 4096, len(forget))
                fb[start:stop] = logits_bits(logits_of(start, stop, forget).numpy(), ft[start:stop])
        out["forget_bits"] = fb
    return out


def dyneval_full(
    model: SpikingLM,
    data: bytes,
    cfg: DynevalFullConfig,
    forget_data: bytes | None = None,
    *,
    chunk: int = 512,
) -> dict[str, Any]:
    """Dynamic evaluation of all the backbone's weights by Adam (Krause et al. 2018).

    A deep copy learns (the shipped model is untouched). Each segment is scored before
    its gradient step; the recurrent state is carried across segments, detached.
    Returns bits [N], seconds (scoring and learning) and, given `forget_data`, the bits of
    it under the final weights (read in parallel chunks, no learning).
    """
    net = copy.deepcopy(model)
    net.train()
    for param in net.parameters():
        param.requires_grad_(True)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    tokens = torch.tensor([BOS, *data[:-1]], dtype=torch.long)
    targets = torch.from_numpy(np.frombuffer(data, np.uint8).astype(np.int64))
    bits = np.empty(len(data), np.float64)
    state = None
    t0 = time.perf_counter()
    for start in range(0, len(data), cfg.segment):
        stop = min(start + cfg.segment, len(data))
        out = net(tokens[start:stop].unsqueeze(0), state)
        logits = out.logits[0]
        bits[start:stop] = logits_bits(logits.detach().float().numpy(), targets[start:stop].numpy())
        loss = torch.nn.functional.cross_entropy(logits, targets[start:stop], reduction="mean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state = type(out.state)(tuple(s.detach() for s in out.state.mix))
    result: dict[str, Any] = {"bits": bits, "seconds": time.perf_counter() - t0}
    if forget_data is not None:  # the adapted copy reads it as the frozen backbone would
        net.eval()
        result["forget_bits"] = backbone_pass(net, forget_data, (), chunk=chunk).frozen_bits()
    return result


@torch.no_grad()
def time_backbone(model: SpikingLM, data: bytes, *, chunk: int, sequential_bytes: int) -> dict:
    """Seconds per byte of the frozen backbone: parallel chunks over `data`, and byte by
    byte (one `step` per byte, the chat's path) over its first `sequential_bytes`."""
    tokens = torch.tensor([BOS, *data[:-1]], dtype=torch.long)
    state = None
    t0 = time.perf_counter()
    for start in range(0, len(data), chunk):
        state = model(tokens[start : start + chunk].unsqueeze(0), state).state
    parallel = (time.perf_counter() - t0) / len(data)
    n = min(sequential_bytes, len(data))
    state = None
    t0 = time.perf_counter()
    for k in range(n):
        state = model.step(tokens[k : k + 1], state).state
    sequential = (time.perf_counter() - t0) / max(n, 1)
    return {"parallel_s_per_byte": parallel, "sequential_s_per_byte": sequential}


def _summary(values: list[float]) -> dict[str, float]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std}


def run_stream(
    model: SpikingLM,
    data: bytes,
    cfg: AdaptBenchConfig,
    *,
    forget_data: bytes | None,
    cache_dir: Path | None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every system of `cfg` on one stream; see the module docstring for the figures."""
    unknown = sorted(set(cfg.systems) - set(SYSTEMS))
    if unknown:
        raise ConfigError(f"unknown system(s) {', '.join(unknown)}; choose from {SYSTEMS}")
    if cfg.seeds < 1:
        raise ConfigError("--seeds must be >= 1")
    stream, hit = cached_pass(model, data, cache_dir, chunk=cfg.chunk)
    log(f"backbone pass of {len(data)} bytes: {'cached' if hit else f'{stream.seconds:.1f} s'}")
    forget = None
    if forget_data is not None:
        forget, _ = cached_pass(model, forget_data, cache_dir, chunk=cfg.chunk)
    timing = time_backbone(
        model, data[: min(len(data), 20_000)], chunk=cfg.chunk, sequential_bytes=cfg.cost_bytes
    )
    frozen_bits = stream.frozen_bits()
    frozen_bpb = float(frozen_bits.mean())
    frozen_forget = float(forget.frozen_bits().mean()) if forget is not None else None
    systems = ["frozen", *[s for s in SYSTEMS if s in cfg.systems and s != "frozen"]]
    if "sham" in systems and "rstdp" not in systems:
        systems.insert(systems.index("sham"), "rstdp")  # sham replays rstdp's rewards
    runs: dict[str, list[dict[str, Any]]] = {}
    recorded: list[float | None] = []
    bounds = _bounds(cfg.adapter)
    for system in systems:
        log(f"  {system} ...")
        if system == "frozen":
            runs[system] = [{"bits": frozen_bits, "seconds": 0.0}]
            if forget is not None:
                runs[system][0]["forget_bits"] = forget.frozen_bits()
        elif system == "rstdp":
            run = _adapter_run(model, cfg.adapter, stream, forget, RecordedRewards, cfg.chunk)
            recorded = run["rewards"].values
            runs[system] = [run]
        elif system == "stdp":
            stdp = replace(cfg.adapter, rule="stdp", rule_params={})
            runs[system] = [_adapter_run(model, stdp, stream, forget, chunk=cfg.chunk)]
        elif system == "sham":
            runs[system] = []
            for seed in range(cfg.seeds):
                order = np.random.default_rng(seed).permutation(len(recorded))
                shuffled = [recorded[k] for k in order]
                runs[system].append(
                    _adapter_run(
                        model,
                        cfg.adapter,
                        stream,
                        forget,
                        lambda inner, s=shuffled: ShuffledRewards(inner, s),
                        cfg.chunk,
                    )
                )
        elif system == "dyneval_adapter":
            runs[system] = [
                dyneval_adapter(
                    stream,
                    cfg.adapter.effective_scale,
                    float(cfg.adapter.sharpness),
                    bounds,
                    cfg.dyneval,
                    seed,
                    forget,
                )
                for seed in range(cfg.seeds)
            ]
        elif system == "dyneval_full":
            runs[system] = [
                dyneval_full(model, data, cfg.dyneval_full, forget_data, chunk=cfg.chunk)
            ]
    results: dict[str, Any] = {}
    for system in systems:
        if system not in cfg.systems:
            continue
        seeds = runs[system]
        bpb = [float(r["bits"].mean()) for r in seeds]
        per_byte = [r["seconds"] / len(data) for r in seeds]
        # dyneval_full's seconds include its own backbone; the adapters' come on top of one
        backbone = 0.0 if system == "dyneval_full" else 1.0
        seq, par = timing["sequential_s_per_byte"], timing["parallel_s_per_byte"]
        entry: dict[str, Any] = {
            "bits_per_byte": _summary(bpb),
            "relative_change": _summary([(b - frozen_bpb) / frozen_bpb for b in bpb]),
            "runs": len(seeds),
            "deterministic": system not in SEEDED,
            "adapter_s_per_byte": statistics.fmean(per_byte),
            "cost": statistics.fmean((backbone * seq + s) / seq for s in per_byte),
            "cost_vs_parallel": statistics.fmean((backbone * par + s) / par for s in per_byte),
        }
        if forget is not None and frozen_forget is not None:
            entry["forgetting"] = _summary(
                [float(r["forget_bits"].mean()) - frozen_forget for r in seeds]
            )
        results[system] = entry
    dyn = results.get("dyneval_adapter")
    if dyn is not None:
        dyn_gain = frozen_bpb - dyn["bits_per_byte"]["mean"]
        for entry in results.values():
            gain = frozen_bpb - entry["bits_per_byte"]["mean"]
            entry["dyneval_fraction"] = gain / dyn_gain if dyn_gain > 0 else math.nan
    return {
        "bytes": len(data),
        "frozen_bits_per_byte": frozen_bpb,
        "frozen_forget_bits_per_byte": frozen_forget,
        "timing": timing,
        "systems": results,
        "targets": _targets(results),
    }


def _bounds(config: AdapterConfig) -> tuple[float, float]:
    params = config.effective_rule_params()
    return float(params.get("w_min", -1.0)), float(params.get("w_max", 1.0))


def _targets(results: dict[str, Any]) -> dict[str, bool | None]:
    """The issue's targets for `rstdp` (None where a system needed for one is missing)."""
    r = results.get("rstdp")
    if r is None:
        return {}
    mean = r["bits_per_byte"]["mean"]

    def worse(name: str) -> bool | None:
        other = results.get(name)
        if other is None:
            return None
        return other["bits_per_byte"]["mean"] - other["bits_per_byte"]["std"] > mean

    return {
        "relative_gain": -r["relative_change"]["mean"] >= TARGETS["relative_gain"],
        "dyneval_fraction": (
            r["dyneval_fraction"] >= TARGETS["dyneval_fraction"]
            if "dyneval_fraction" in r
            else None
        ),
        "sham_worse": worse("sham"),
        "stdp_worse": worse("stdp"),
        "forgetting": (
            r["forgetting"]["mean"] <= TARGETS["forgetting"] if "forgetting" in r else None
        ),
        "cost": r["cost"] <= TARGETS["cost"],
    }


def run_adapt_bench(
    model: SpikingLM,
    streams: dict[str, bytes],
    cfg: AdaptBenchConfig,
    *,
    forget_data: bytes | None,
    cache_dir: Path | None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """`run_stream` for every stream; one JSON-able report."""
    out: dict[str, Any] = {}
    for name, data in streams.items():
        log(f"stream {name}")
        out[name] = run_stream(
            model, data, cfg, forget_data=forget_data, cache_dir=cache_dir, log=log
        )
    return {
        "streams": out,
        "max_bytes": cfg.max_bytes,
        "seeds": cfg.seeds,
        "adapter": cfg.adapter.to_dict(),
        "dyneval": {
            "optimizer": "adam",
            "lr": cfg.dyneval.lr,
            "segment": cfg.dyneval.segment,
            "init_std": cfg.dyneval.init_std,
        },
        "dyneval_full": {
            "optimizer": "adam",
            "lr": cfg.dyneval_full.lr,
            "segment": cfg.dyneval_full.segment,
        },
        "forget_bytes": cfg.forget_bytes if forget_data is not None else 0,
        "model": {"name": model.config.name, "hash": getattr(model, "content_hash", None)},
        "torch_threads": torch.get_num_threads(),
        "target_values": TARGETS,
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as one markdown table per stream (what docs/results.md shows)."""
    lines = []
    for name, res in report["streams"].items():
        lines += [
            f"**{Path(name).name}** (first {res['bytes']:,} bytes; frozen "
            f"{res['frozen_bits_per_byte']:.4f} b/B)",
            "",
            "| system | bits/byte (mean ± std) | runs | vs frozen | of dyneval gain "
            "| forgetting (b/B) | cost (byte-by-byte) | cost (vs parallel) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for system, e in res["systems"].items():
            bpb, frac = e["bits_per_byte"], e.get("dyneval_fraction")
            forget = e.get("forgetting")
            forget_s = "-" if forget is None else f"{forget['mean']:+.4f} ± {forget['std']:.4f}"
            frac_s = "-" if frac is None or frac != frac else f"{frac:.0%}"
            runs = f"{e['runs']}" + (" (deterministic)" if e["deterministic"] else " seeds")
            lines.append(
                f"| {system} | {bpb['mean']:.4f} ± {bpb['std']:.4f} | {runs} "
                f"| {e['relative_change']['mean']:+.2%} "
                f"| {frac_s} | {forget_s} "
                f"| {e['cost']:.3f} | {e['cost_vs_parallel']:.2f} |"
            )
        targets = ", ".join(
            f"{k} {'met' if v else ('n/a' if v is None else 'MISSED')}"
            for k, v in res["targets"].items()
        )
        lines += ["", f"rstdp targets: {targets}.", ""]
    return "\n".join(lines)
