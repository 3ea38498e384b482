"""Trace benchmarks (`plastic bench trace`): recording overhead, bytes per token, replay speed.

1. Recording overhead on chat tokens/s, measured in one run: the same learning chat (user
   turns observed, replies generated with a fixed sampler seed, guards on) from the same
   conversation snapshot and adapter weights, with and without a `TraceRecorder`,
   interleaved `repeats` times; tokens/s = (observed + generated tokens) / wall seconds of
   the turns (turn-end commits included: a turn is durable when it returns), and the
   same as milliseconds per turn (`turn_ms`). ratio =
   recording / not recording (target >= 0.95). CPU time of the whole process (the writer
   thread included) gives `ratio_cpu`; `turn_commit_ms_*` is the wall time of the commits
   at turn ends (the only place the chat waits for the writer).
2. Bytes per token and per turn on disk of the recorded store: everything, the spike
   rasters alone, and for the context memory (`--rule detector_stdp`, the chat's default)
   what its reads were given (logits rows and tokens) and its saved states and checkpoints.
3. Spike encodings compared on the recorded rasters, chunk by chunk (256 rule steps):
   bool + Blosc(zstd, bit-shuffle) (the format's choice, a core Zarr v3 codec), bit-packed
   uint8 + Blosc(zstd), and event lists (per step: spike count per timestep + uint16 neuron
   ids) + Blosc(zstd).
4. Replay tokens/s: open loop (recorded backend; torch reference too, with its max abs
   difference from Numba) and closed loop (backbone re-run), median of `repeats`. The
   timed chats start from a conversation snapshot (recording begins mid-stream), while
   closed-loop replay starts from <bos>: its weights differ from the recorded ones here;
   on a chat recorded from its start they agree exactly (tests/replay, docs/trace-format.md).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plastic.models.generate import Conversation, Sampling
from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity.config import AdapterConfig, memory_adapter_config
from plastic.plasticity.model import PlasticModel
from plastic.replay.closed_loop import closed_loop
from plastic.replay.reader import TraceReader
from plastic.replay.recorder import TraceRecorder
from plastic.replay.replay import ReplayOptions, replay
from plastic.replay.schema import STEP_CHUNK

MIN_RATIO = 0.95
TURNS = (
    b"The zorblat of Quimby is teal and purple, and it hums at dawn. Nobody in the village "
    b"has ever heard it at night, though the miller swears he once did.",
    b"It was a bright cold day in April, and the clocks were striking thirteen. The old "
    b"house stood at the end of the lane, its windows dark.",
    b"Tell me again what the zorblat of Quimby does at dawn, and what colour it is.",
    b"A man walked slowly down the road to the harbour to watch the boats come in.",
)


@dataclass(frozen=True)
class TraceBenchConfig:
    turns: int = 4
    reply_tokens: int = 48
    repeats: int = 3
    seed: int = 0
    rule: str = "detector_stdp"  # the chat's default adapter, the context memory


def adapter_config(rule: str) -> AdapterConfig:
    """The memory for its rule (detector_stdp), else a readout adapter with `rule`."""
    return memory_adapter_config() if rule == "detector_stdp" else AdapterConfig(rule=rule)


def _chat(model: PlasticModel, conv: Conversation, cfg: TraceBenchConfig) -> int:
    """One learning chat of cfg.turns turns; returns the tokens it fed and generated."""
    engine = model.engine
    sampling = Sampling(temperature=0.8, top_k=40)
    tokens = 0
    for k in range(cfg.turns):
        text = TURNS[k % len(TURNS)] + b"\n\n"
        engine.begin_turn()
        tokens += engine.observe(conv, text).tokens
        with engine.generating():
            gen = conv.generate(cfg.reply_tokens, sampling, stop=None)
            for _ in gen:
                pass
        tokens += len(gen.tokens)
        engine.end_turn()
    return tokens


def _encodings(reader: TraceReader) -> dict[str, Any]:
    """Bytes of the recorded rasters under three encodings (see the module docstring)."""
    from numcodecs import Blosc

    bitshuffle = Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE)
    byteshuffle = Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE)
    sizes = {"bool_blosc_bitshuffle": 0, "packbits_blosc": 0, "events_blosc": 0, "raw_bool": 0}
    spikes = cells = 0
    for spec in reader.sites:
        if spec.kind == "memory":  # no spike rasters: it reads tokens and logits
            continue
        for which in ("pre", "post"):
            path = f"{spec.group}/{which}"
            for start in range(0, reader.length(path), STEP_CHUNK):
                block = reader.read(path, start, start + STEP_CHUNK)
                sizes["raw_bool"] += block.nbytes
                spikes += int(block.sum())
                cells += block.size
                sizes["bool_blosc_bitshuffle"] += len(bitshuffle.encode(block.view(np.uint8)))
                packed = np.packbits(block, axis=-1)
                sizes["packbits_blosc"] += len(byteshuffle.encode(packed))
                counts = block.sum(axis=-1).astype(np.uint16).reshape(-1)  # per step, timestep
                ids = np.nonzero(block.reshape(-1, block.shape[-1]))[1].astype(np.uint16)
                sizes["events_blosc"] += len(byteshuffle.encode(counts)) + len(
                    byteshuffle.encode(ids)
                )
    n = max(reader.n_tokens, 1)
    return {
        "firing_fraction": spikes / max(cells, 1),
        "bytes": sizes,
        "bytes_per_token": {k: v / n for k, v in sizes.items()},
    }


def run_trace_bench(backbone: SpikingLM, cfg: TraceBenchConfig | None = None) -> dict[str, Any]:
    cfg = cfg or TraceBenchConfig()
    model = PlasticModel(backbone)
    model.add_adapter("default", adapter_config(cfg.rule))
    engine = model.engine
    work = Path(tempfile.mkdtemp(prefix="plastic-bench-trace-"))
    try:
        conv = Conversation(model, seed=cfg.seed)
        start_conv, start_weights = conv.snapshot(), engine.snapshot()
        model.forget_context()
        last_store: Path | None = None
        commits: list[float] = []

        def run(recording: bool, k: int) -> tuple[float, float, int]:
            nonlocal last_store
            conv.restore(start_conv)
            conv.generator.manual_seed(cfg.seed)
            engine.restore(start_weights)
            model.forget_context()
            recorder = None
            if recording:
                last_store = work / f"run{k}.zarr"
                recorder = TraceRecorder.attach(model, last_store)
            t0, c0 = time.perf_counter(), time.process_time()
            n = _chat(model, conv, cfg)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if recorder is not None:
                commits.extend(recorder.commit_seconds[1:])  # [0]: the session start
                recorder.close()
            return n / wall, n / cpu, n

        run(False, -1)  # warm-up (kernels compiled, caches filled)
        run(True, -1)
        walls: dict[str, list[float]] = {"plain": [], "recording": []}
        cpus: dict[str, list[float]] = {"plain": [], "recording": []}
        tokens = 0
        for r in range(cfg.repeats):
            order = (False, True) if r % 2 == 0 else (True, False)
            for recording in order:
                wall, cpu, tokens = run(recording, r)
                key = "recording" if recording else "plain"
                walls[key].append(wall)
                cpus[key].append(cpu)
        median = {k: statistics.median(v) for k, v in walls.items()}
        cpu = {k: statistics.median(v) for k, v in cpus.items()}
        ratio = median["recording"] / median["plain"]
        assert last_store is not None
        reader = TraceReader(last_store)
        total = reader.nbytes_stored()
        raster = sum(
            reader.nbytes_stored(f"{s.group}/{w}") for s in reader.sites for w in ("pre", "post")
        )
        checkpoints = sum(
            reader.nbytes_stored(f"{s.group}/{w}")
            for s in reader.sites
            for w in (
                "checkpoint_weights",
                "state_weights",
                "rule_state",
                "state_blob",
                "state_end",
                "checkpoint_blob",
                "checkpoint_end",
            )
        )
        memory = {
            w: sum(reader.nbytes_stored(f"{s.group}/{w}") for s in reader.sites)
            for w in ("read_logits", "read_id", "state_blob", "checkpoint_blob")
        }

        def timed(fn) -> tuple[float, Any]:
            values, last = [], None
            for _ in range(cfg.repeats):
                last = fn()
                values.append(last.tokens_per_s)
            return statistics.median(values), last

        open_numba, numba_result = timed(lambda: replay(reader, ReplayOptions(verify=True)))
        open_torch, torch_result = timed(
            lambda: replay(reader, ReplayOptions(verify=True, backend="torch"))
        )
        w_numba, w_torch = numba_result.weights(), torch_result.weights()
        torch_vs_numba = max(
            float(np.max(np.abs(w_numba[k].astype(np.float64) - w_torch[k]))) for k in w_numba
        )

        def closed_once() -> Any:
            result = closed_loop(reader, backbone)
            result.weights_at_end = result.weights()
            result.release()  # its hooks would otherwise stay on the shared backbone
            return result

        closed, closed_result = timed(closed_once)
        return {
            "recording_overhead": {
                "tokens_per_s": median,
                "tokens_per_cpu_s": cpu,
                "runs_tokens_per_s": walls,
                "ratio": ratio,
                "ratio_cpu": cpu["recording"] / cpu["plain"],
                "min_ratio": MIN_RATIO,
                "ok": ratio >= MIN_RATIO,
                "tokens_per_chat": tokens,
                "turn_ms": {k: 1000 * tokens / v / cfg.turns for k, v in median.items()},
                "turn_commit_ms_median": 1000 * statistics.median(commits),
                "turn_commit_ms_max": 1000 * max(commits),
            },
            "storage": {
                "tokens": reader.n_tokens,
                "bytes": total,
                "bytes_per_token": total / reader.n_tokens,
                "raster_bytes_per_token": raster / reader.n_tokens,
                "bytes_per_turn": total / cfg.turns,
                "memory_bytes": memory,
                "checkpoint_and_state_bytes": checkpoints,
                "checkpoints": int(reader.committed["checkpoints"]),
                "encodings": _encodings(reader),
            },
            "replay": {
                "open_loop_tokens_per_s": open_numba,
                "open_loop_torch_tokens_per_s": open_torch,
                "verify_max_abs_diff": numba_result.max_abs_diff,
                "torch_vs_numba_max_abs_diff": torch_vs_numba,
                "closed_loop_tokens_per_s": closed,
                "closed_loop_vs_recorded_max_abs_diff": closed_result.final_diff,
            },
            "config": cfg.__dict__,
            "model": {"name": backbone.config.name, "parameters": backbone.num_parameters()},
            "torch_threads": torch.get_num_threads(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
