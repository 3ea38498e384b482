"""`plastic bench train`: training tokens/s and peak memory of a preset on one device.

The timed step is `plastic.models.train.training_step` - the one `plastic train` runs: bf16
autocast on CUDA, AdamW, gradient clipping, optionally gradient checkpointing and
torch.compile'd LIF loops - on random byte windows (throughput does not depend on the
text). `warmup` steps run first (compilation, allocator, caches) and are not timed; the
timed steps end with a device synchronisation. Peak memory covers the whole run, warm-up
included (what a training job needs): torch's `max_memory_allocated` on CUDA, the process's
peak resident set on CPU.
The footprint's estimate (`plastic.models.footprint`) is reported beside the measurement.
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from typing import Any

import torch

from plastic.models.config import preset
from plastic.models.footprint import parameter_counts, training_footprint
from plastic.models.spiking_lm import SpikingLM
from plastic.models.tokenizer import BOS
from plastic.models.train import TrainConfig, compile_populations, make_optimizer, training_step


@dataclasses.dataclass(frozen=True)
class TrainBenchConfig:
    preset: str = "tiny"
    device: str = "cpu"
    batch_size: int = 8
    seq_len: int = 256
    steps: int = 5
    warmup: int = 2
    grad_checkpointing: bool | None = None  # None: on with cuda, as `plastic train`
    compile: bool = False
    seed: int = 0
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def run_train_bench(cfg: TrainBenchConfig) -> dict[str, Any]:
    """Measure; returns a JSON-able report."""
    torch.manual_seed(cfg.seed)
    model_cfg = preset(cfg.preset, **cfg.model_overrides)
    device = torch.device(cfg.device)
    checkpointing = (
        cfg.device == "cuda" if cfg.grad_checkpointing is None else cfg.grad_checkpointing
    )
    model = SpikingLM(model_cfg).to(device).train()
    model.gradient_checkpointing = checkpointing
    if cfg.compile:
        compile_populations(model)
    train_cfg = TrainConfig(data="", valid=None, out="", steps=1, device=cfg.device)
    opt = make_optimizer(model, train_cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        tgt = torch.randint(0, 256, (cfg.batch_size, cfg.seq_len), generator=gen)
        inp = torch.cat([torch.full((cfg.batch_size, 1), BOS), tgt[:, :-1]], dim=1)
        return inp.to(device), tgt.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(cfg.warmup):
        training_step(model, opt, *batch(), train_cfg)
    sync()
    seconds = []
    loss = float("nan")
    for _ in range(cfg.steps):
        inp, tgt = batch()
        start = time.perf_counter()
        ce, _ = training_step(model, opt, inp, tgt, train_cfg)
        sync()
        seconds.append(time.perf_counter() - start)
        loss = float(ce.detach())
    tokens = cfg.batch_size * cfg.seq_len
    total = sum(seconds)
    peak = (
        {"peak_memory_allocated_bytes": torch.cuda.max_memory_allocated(device)}
        if device.type == "cuda"
        else {"peak_rss_bytes": _peak_rss_bytes()}
    )
    footprint = training_footprint(
        model_cfg,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        checkpointing=checkpointing,
        activation_bytes=2 if device.type == "cuda" else 4,
    )
    counts = parameter_counts(model_cfg)
    return {
        "benchmark": "train",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "config": dataclasses.asdict(cfg),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": "bf16 autocast" if device.type == "cuda" else "float32",
        "grad_checkpointing": checkpointing,
        "parameters": counts.total,
        "embedding_readout_fraction": counts.embedding_readout_fraction,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens * cfg.steps / total if total > 0 else None,
        "step_seconds": seconds,
        "last_loss_bits": loss / 0.6931471805599453,
        **peak,
        "footprint_estimate": footprint.to_dict(),
        "torch_threads": torch.get_num_threads(),
    }
