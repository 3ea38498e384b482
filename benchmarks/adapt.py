"""The prequential adaptation benchmark (`plastic bench adapt`): what plasticity buys.

Protocol: the frozen backbone reads a stream byte by byte from <bos>, never reset; every
byte is predicted *before* anything learns from it; the figure is cumulative bits/byte.
Systems (all on the same backbone pass, see `plastic.plasticity.prequential`):

- `frozen`: no adapter;
- `memory`: the default adapter of `plastic chat --learn`, the context memory
  (`memory_adapter_config()`, `plastic.plasticity.memory`);
- `stdp`: the same memory without its third factor: the detectors' two-factor STDP alone,
  the mixer kept at its initial trust (mixer rate 0);
- `sham`: the same memory whose mixer's teaching signal is the stream's bytes shuffled in
  time (seeded): as much teaching, carrying no information about the byte that came;
- `readout`: the previous default, the readout adapter (`AdapterConfig()`, rstdp);
- `dyneval_adapter` (opt in): the gradient anchor of the readout adapter (Krause et al.
  2018): the same weights W [n_pre, V] and logit formula (gain * sign(m)|m|^p, m the
  spike-weighted mean row) trained by Adam on the cross-entropy of each segment of
  `segment` bytes, after that segment has been scored; W clamped to the same bounds;
- `dyneval_full` (opt in): Adam on every backbone weight (Krause et al. 2018);
- the counting and compression anchors of `plastic_benchmarks.baselines`: `ngram_mix`
  (a Witten-Bell byte 6-gram learnt from the stream, mixed online with the frozen
  backbone), `ppmd` (opt in: needs `pyppmd`, the `bench` extra), `bzip2` and `xz`
  (bits/byte of the compressed stream: no forgetting, cost = their own time).

Each system is one runner function in the table `RUNNERS` (what it needs, whether it is
seeded, whether its time comes on top of the backbone's); adding a system is one function
and one entry.

Readout adapters never feed the backbone, so each system replays one cached backbone pass
through the engine's own per-token code (`PlasticModel.replay`); a test checks the bits
equal those of the engine's path.

`forgetting`: bits/byte of the first `forget_bytes` of a domain-A text (Gutenberg valid)
under the weights left at the end of the stream (learning off), minus the frozen
backbone's. `cost`: wall-clock per byte of the system over the frozen backbone's, timed in
this run: `cost` against the backbone reading byte by byte (the chat's path, as the
protocol reads), `cost_vs_parallel` against its fast parallel (chunked) pass, the
cheapest way the frozen model can read a stream. `state_bytes`: the memory the adapter's
learnt state holds after the stream. Deterministic systems (frozen, memory, stdp, readout:
no randomness anywhere) run once and report std 0 with `deterministic: true`; sham
(shuffle) and dyneval_adapter (random initial W, needed because the gradient of |m|^p
vanishes at W = 0 for p > 1) run once per seed.
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
from plastic_benchmarks import baselines

from plastic.errors import ConfigError
from plastic.models.spiking_lm import SpikingLM
from plastic.models.tokenizer import BOS
from plastic.plasticity.config import AdapterConfig, memory_adapter_config
from plastic.plasticity.model import PlasticModel
from plastic.plasticity.prequential import (
    BackbonePass,
    backbone_pass,
    cached_pass,
    logits_bits,
    replay_bits,
)

# state_bytes_at_1mb: the memory's state after reading 1,000,000 bytes (checked on such runs)
TARGETS = {"forgetting": 0.01, "cost_vs_parallel": 1.2, "state_bytes_at_1mb": 500e6}
DEFAULT = "memory"  # the system the targets are checked for


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
    systems: tuple[str, ...] = field(default_factory=lambda: DEFAULT_SYSTEMS)
    adapter: AdapterConfig = field(default_factory=memory_adapter_config)
    readout: AdapterConfig = field(default_factory=AdapterConfig)
    dyneval: DynevalConfig = field(default_factory=DynevalConfig)
    dyneval_full: DynevalFullConfig = field(default_factory=DynevalFullConfig)
    forget_bytes: int = 50_000
    cost_bytes: int = 400  # bytes the backbone reads byte by byte to time the chat path
    chunk: int = 512


class ShuffledTeacher:
    """The sham's teaching signal: the stream's bytes in a seeded random order, handed out
    in stream order whatever the bytes read (as much teaching, no information)."""

    def __init__(self, data: bytes, seed: int) -> None:
        order = np.random.default_rng(seed).permutation(len(data))
        self.values = np.frombuffer(data, np.uint8)[order].astype(np.int64)
        self.k = 0

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        out = self.values[self.k : self.k + len(tokens)]
        if len(out) < len(tokens):  # past the stream (the forgetting text): no teaching
            out = np.concatenate([out, np.full(len(tokens) - len(out), 256, np.int64)])
        self.k += len(tokens)
        return out


def _adapter_run(
    model: SpikingLM,
    config: AdapterConfig,
    stream: BackbonePass,
    forget: BackbonePass | None,
    rewards: Callable[[Any], Any] | None = None,
    chunk: int = 512,
    teacher: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Replay `stream` through one fresh adapter; bits, seconds, forgetting bits, and the
    bytes its learnt state holds (when the adapter reports them)."""
    plastic = PlasticModel(model)
    adapter = plastic.add_adapter("bench", config)
    wrapper = None
    if rewards is not None:
        wrapper = rewards(adapter.rewards)
        adapter.rewards = wrapper
    if teacher is not None:
        for layer in adapter.layers.values():
            layer.teacher = teacher
    t0 = time.perf_counter()
    with plastic.observing():
        bits = replay_bits(plastic, stream, chunk=chunk)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {"bits": bits, "seconds": seconds, "rewards": wrapper}
    sizes = [getattr(layer.synapses, "nbytes", None) for layer in adapter.layers.values()]
    if all(size is not None for size in sizes):
        out["state_bytes"] = sum(size() for size in sizes)
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


@dataclass
class StreamContext:
    """What a runner reads: the stream, its backbone pass, the forgetting text (as bytes and
    as a pass; None when skipped) and the runs of the systems it `needs`."""

    model: SpikingLM
    data: bytes
    cfg: AdaptBenchConfig
    stream: BackbonePass
    forget: BackbonePass | None
    forget_data: bytes | None
    runs: dict[str, list[dict[str, Any]]]


RunnerFn = Callable[[StreamContext], list[dict[str, Any]]]


@dataclass(frozen=True)
class Runner:
    """One system of the bench: `run` gives one dict per run (per seed if `seeded`) with
    "bits" [N] (or "bits_per_byte" for a compressor), "seconds", and optionally
    "forget_bits" [F], "state_bytes" (memory its state holds after the stream) and
    "detail" (a JSON-able dict copied into the report)."""

    run: RunnerFn
    default: bool = True  # run when --systems is not given
    seeded: bool = False  # one run per seed; else deterministic, one run
    on_backbone: bool = True  # its seconds come on top of the frozen backbone's pass
    needs: tuple[str, ...] = ()  # systems whose runs it reads (run before it)


def _run_frozen(ctx: StreamContext) -> list[dict[str, Any]]:
    run: dict[str, Any] = {"bits": ctx.stream.frozen_bits(), "seconds": 0.0}
    if ctx.forget is not None:
        run["forget_bits"] = ctx.forget.frozen_bits()
    return [run]


def _run_memory(ctx: StreamContext) -> list[dict[str, Any]]:
    cfg = ctx.cfg
    return [_adapter_run(ctx.model, cfg.adapter, ctx.stream, ctx.forget, chunk=cfg.chunk)]


def _run_stdp(ctx: StreamContext) -> list[dict[str, Any]]:
    """The default memory without its third factor (mixer rate 0)."""
    kind_params = {**ctx.cfg.adapter.kind_params, "mixer_rate": 0.0}
    stdp = replace(ctx.cfg.adapter, kind_params=kind_params)
    return [_adapter_run(ctx.model, stdp, ctx.stream, ctx.forget, chunk=ctx.cfg.chunk)]


def _run_sham(ctx: StreamContext) -> list[dict[str, Any]]:
    """The default memory taught by the stream's bytes shuffled in time, one run per seed."""
    return [
        _adapter_run(
            ctx.model,
            ctx.cfg.adapter,
            ctx.stream,
            ctx.forget,
            chunk=ctx.cfg.chunk,
            teacher=ShuffledTeacher(ctx.data, seed),
        )
        for seed in range(ctx.cfg.seeds)
    ]


def _run_readout(ctx: StreamContext) -> list[dict[str, Any]]:
    cfg = ctx.cfg
    return [_adapter_run(ctx.model, cfg.readout, ctx.stream, ctx.forget, chunk=cfg.chunk)]


def _run_dyneval_adapter(ctx: StreamContext) -> list[dict[str, Any]]:
    cfg = ctx.cfg
    gain, sharpness = float(cfg.readout.settings.scale), float(cfg.readout.settings.sharpness)
    return [
        dyneval_adapter(
            ctx.stream, gain, sharpness, _bounds(cfg.readout), cfg.dyneval, seed, ctx.forget
        )
        for seed in range(cfg.seeds)
    ]


def _run_dyneval_full(ctx: StreamContext) -> list[dict[str, Any]]:
    cfg = ctx.cfg
    return [dyneval_full(ctx.model, ctx.data, cfg.dyneval_full, ctx.forget_data, chunk=cfg.chunk)]


def _run_ngram_mix(ctx: StreamContext) -> list[dict[str, Any]]:
    baselines.ngram_mix_run(np.full(8, 0.5), bytes(8))  # compiles (or loads) the kernel
    p_frozen = baselines.frozen_probs(ctx.stream.logits, ctx.data)
    t0 = time.perf_counter()
    mixed, state = baselines.ngram_mix_run(p_frozen, ctx.data)
    seconds = time.perf_counter() - t0
    detail = {
        "ngram_bits_per_byte": float(-np.log2(mixed.p_ngram).mean()),
        "contexts": int(state.used[0]),
        "context_symbol_pairs": int(state.used[1]),
        "mix_theta": state.theta.tolist(),
    }
    run = {"bits": mixed.bits, "seconds": seconds, "state_bytes": state.nbytes, "detail": detail}
    if ctx.forget is not None:
        forget_p = baselines.frozen_probs(ctx.forget.logits, ctx.forget.data)
        forgotten, _ = baselines.ngram_mix_run(forget_p, ctx.forget.data, state, learn=False)
        run["forget_bits"] = forgotten.bits
    return [run]


def _run_ppmd(ctx: StreamContext) -> list[dict[str, Any]]:
    baselines.ppmd_order_bits(b"warm", 2)  # imports pyppmd (or says how to install it)
    by_order = {
        order: baselines.timed(baselines.ppmd_order_bits, ctx.data, order)
        for order in baselines.PPMD_ORDERS
    }
    best = min(by_order, key=lambda k: by_order[k][0])
    detail = {
        "max_order": best,
        "mem_size": baselines.PPMD_MEMORY,
        "bits_per_byte_by_order": {str(k): v[0] for k, v in by_order.items()},
    }
    return [{"bits_per_byte": by_order[best][0], "seconds": by_order[best][1], "detail": detail}]


def _compressor_runner(name: str) -> RunnerFn:
    def run(ctx: StreamContext) -> list[dict[str, Any]]:
        bpb, seconds = baselines.timed(baselines.compressor_bits, name, ctx.data)
        return [{"bits_per_byte": bpb, "seconds": seconds}]

    return run


RUNNERS: dict[str, Runner] = {
    "frozen": Runner(_run_frozen),
    "memory": Runner(_run_memory),
    "stdp": Runner(_run_stdp),
    "sham": Runner(_run_sham, seeded=True),
    "readout": Runner(_run_readout),
    "dyneval_adapter": Runner(_run_dyneval_adapter, default=False, seeded=True),
    "dyneval_full": Runner(_run_dyneval_full, default=False, on_backbone=False),
    "ngram_mix": Runner(_run_ngram_mix),
    "ppmd": Runner(_run_ppmd, default=False, on_backbone=False),
    "bzip2": Runner(_compressor_runner("bzip2"), on_backbone=False),
    "xz": Runner(_compressor_runner("xz"), on_backbone=False),
}
SYSTEMS = tuple(RUNNERS)
DEFAULT_SYSTEMS = tuple(name for name, runner in RUNNERS.items() if runner.default)


def check_systems(systems: Sequence[str]) -> None:
    """One-line ConfigError unless `systems` is a non-empty selection of `SYSTEMS`."""
    unknown = [s for s in systems if s not in RUNNERS]
    if unknown or not systems:
        what = f"unknown system(s) {', '.join(unknown)}" if unknown else "no system chosen"
        raise ConfigError(f"{what}; choose from {', '.join(SYSTEMS)}")


def _with_needs(systems: Sequence[str]) -> list[str]:
    """`systems`, `frozen` and everything they need, in the table's order."""
    wanted = {"frozen", *systems}
    pending = list(wanted)
    while pending:
        for need in RUNNERS[pending.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return [name for name in RUNNERS if name in wanted]


def _bits_per_byte(run: dict[str, Any]) -> float:
    return float(run["bits"].mean()) if "bits" in run else float(run["bits_per_byte"])


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
    check_systems(cfg.systems)
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
    frozen_bpb = float(stream.frozen_bits().mean())
    frozen_forget = float(forget.frozen_bits().mean()) if forget is not None else None
    ctx = StreamContext(model, data, cfg, stream, forget, forget_data, runs={})
    for system in _with_needs(cfg.systems):
        log(f"  {system} ...")
        ctx.runs[system] = RUNNERS[system].run(ctx)
    results: dict[str, Any] = {}
    for system in ctx.runs:
        if system not in cfg.systems:
            continue
        runner, seeds = RUNNERS[system], ctx.runs[system]
        bpb = [_bits_per_byte(r) for r in seeds]
        per_byte = [r["seconds"] / len(data) for r in seeds]
        backbone = 1.0 if runner.on_backbone else 0.0
        seq, par = timing["sequential_s_per_byte"], timing["parallel_s_per_byte"]
        entry: dict[str, Any] = {
            "bits_per_byte": _summary(bpb),
            "relative_change": _summary([(b - frozen_bpb) / frozen_bpb for b in bpb]),
            "runs": len(seeds),
            "deterministic": not runner.seeded,
            "adapter_s_per_byte": statistics.fmean(per_byte),
            "cost": statistics.fmean((backbone * seq + s) / seq for s in per_byte),
            "cost_vs_parallel": statistics.fmean((backbone * par + s) / par for s in per_byte),
        }
        if frozen_forget is not None and all("forget_bits" in r for r in seeds):
            entry["forgetting"] = _summary(
                [float(r["forget_bits"].mean()) - frozen_forget for r in seeds]
            )
        if all("state_bytes" in r for r in seeds):
            entry["state_bytes"] = max(int(r["state_bytes"]) for r in seeds)
        if len(seeds) == 1 and "detail" in seeds[0]:
            entry["detail"] = seeds[0]["detail"]
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
        "targets": _targets(results, len(data)),
    }


def _bounds(config: AdapterConfig) -> tuple[float, float]:
    params = config.effective_rule_params()
    return float(params.get("w_min", -1.0)), float(params.get("w_max", 1.0))


def _targets(results: dict[str, Any], n_bytes: int) -> dict[str, Any]:
    """The issue's targets for the default `memory` over a stream of `n_bytes` (None where a
    system or figure needed for one is missing, or the stream is shorter than 1 MB for the
    state target); `margins` are its bits/byte minus each anchor's (negative: it wins)."""
    r = results.get(DEFAULT)
    if r is None:
        return {}
    mean = r["bits_per_byte"]["mean"]

    def margin(name: str) -> float | None:
        other = results.get(name)
        return None if other is None else mean - other["bits_per_byte"]["mean"]

    def worse(name: str) -> bool | None:
        other = results.get(name)
        if other is None:
            return None
        return other["bits_per_byte"]["mean"] - other["bits_per_byte"]["std"] > mean

    beats = {name: margin(name) for name in ("ppmd", "ngram_mix")}
    return {
        "beats_ppmd": None if beats["ppmd"] is None else beats["ppmd"] < 0,
        "beats_ngram_mix": None if beats["ngram_mix"] is None else beats["ngram_mix"] < 0,
        "sham_worse": worse("sham"),
        "stdp_worse": worse("stdp"),
        "forgetting": (
            r["forgetting"]["mean"] <= TARGETS["forgetting"] if "forgetting" in r else None
        ),
        "cost_vs_parallel": r["cost_vs_parallel"] <= TARGETS["cost_vs_parallel"],
        "state_at_1mb": (
            r["state_bytes"] <= TARGETS["state_bytes_at_1mb"]
            if "state_bytes" in r and n_bytes >= 1_000_000
            else None
        ),
        "margins": {k: v for k, v in beats.items() if v is not None},
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
        "readout_adapter": cfg.readout.to_dict(),
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


def _span(n_bytes: int, offset: int) -> str:
    if offset == 0:
        return f"first {n_bytes:,} bytes"
    return f"{n_bytes:,} bytes from offset {offset:,}"


def _ratio(value: float, digits: int) -> str:
    """A cost ratio with `digits` decimals, or in scientific notation if that shows 0."""
    return f"{value:.{digits}f}" if value >= 10**-digits else f"{value:.1e}"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as one markdown table per stream (what docs/results.md shows)."""
    lines = []
    for name, res in report["streams"].items():
        lines += [
            f"**{Path(name).name}** ({_span(res['bytes'], report.get('offset', 0))}; frozen "
            f"{res['frozen_bits_per_byte']:.4f} b/B)",
            "",
            "| system | bits/byte (mean ± std) | runs | vs frozen | of dyneval gain "
            "| forgetting (b/B) | cost (byte-by-byte) | cost (vs parallel) | state |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for system, e in res["systems"].items():
            bpb, frac = e["bits_per_byte"], e.get("dyneval_fraction")
            forget = e.get("forgetting")
            forget_s = "-" if forget is None else f"{forget['mean']:+.4f} ± {forget['std']:.4f}"
            frac_s = "-" if frac is None or frac != frac else f"{frac:.0%}"
            runs = f"{e['runs']}" + (" (deterministic)" if e["deterministic"] else " seeds")
            state = f"{e['state_bytes'] / 2**20:.1f} MiB" if "state_bytes" in e else "-"
            lines.append(
                f"| {system} | {bpb['mean']:.4f} ± {bpb['std']:.4f} | {runs} "
                f"| {e['relative_change']['mean']:+.2%} "
                f"| {frac_s} | {forget_s} "
                f"| {_ratio(e['cost'], 3)} | {_ratio(e['cost_vs_parallel'], 2)} | {state} |"
            )
        targets = ", ".join(
            f"{k} {'met' if v else ('n/a' if v is None else 'MISSED')}"
            for k, v in res["targets"].items()
            if k != "margins"
        )
        margins = ", ".join(
            f"{v:+.4f} b/B vs {k}" for k, v in res["targets"].get("margins", {}).items()
        )
        lines += [
            "",
            f"{DEFAULT} targets: {targets}" + (f" (margins {margins})." if margins else ".")
            if targets
            else f"({DEFAULT} not run)",
            "",
        ]
    return "\n".join(lines)
