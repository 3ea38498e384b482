"""Data-parallel training across processes: torchrun's environment, DDP, and the arithmetic
that makes N processes compute exactly what one process computes on the same global batch.

`torchrun --nproc-per-node N -m plastic train ...` (or multi-node through torchrun's
rendezvous) sets RANK, WORLD_SIZE and LOCAL_RANK; `init` joins the process group (NCCL on
CUDA, gloo on CPU). Every rank draws the *same* global batch from the same data generator
and keeps its own contiguous slice of rows (`shard`): the data position is the generator's
state and the global step, identical on every rank, so a checkpoint written by rank 0
resumes exactly under any number of processes whose count divides the batch.

Exactness: DDP averages gradients over ranks, which equals the gradient of the global
mean loss when the slices are equal. The firing-rate penalty is not a mean over rows (it is
a square of one), so `rate_penalty_term` builds, from the globally averaged rates R, the
local term whose averaged gradient is exactly that of (R - target)^2.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from plastic.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def context_from_env() -> DistContext:
    """RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them (absent: one process)."""
    ctx = DistContext(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if ctx.world_size < 1 or not 0 <= ctx.rank < ctx.world_size:
        raise ConfigError(f"bad torchrun environment: RANK {ctx.rank}, WORLD_SIZE {ctx.world_size}")
    return ctx


def init(device: str) -> tuple[DistContext, torch.device]:
    """Join the process group when torchrun started several processes; returns this
    process's context and its device (cuda: the GPU of its LOCAL_RANK)."""
    ctx = context_from_env()
    if device == "cuda":
        index = ctx.local_rank
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {index} has no GPU ({torch.cuda.device_count()} visible): "
                "start at most one process per GPU"
            )
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device(device)
    if ctx.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return ctx, dev


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (if this process joined one).

    The garbage the run left is collected first: DDP's reducer sits in reference cycles and
    holds the group, so without this the group (and gloo's threads) would outlive
    `destroy_process_group` until the interpreter's finalisation, where a rank once aborted
    ("terminate called without an active exception", SIGABRT, after its work was saved).
    No barrier is needed here: a finished run's last checkpoint already ends in one."""
    if ctx.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def check_batch(ctx: DistContext, batch_size: int) -> None:
    """The global batch must split into equal slices (else the average is not the mean)."""
    if batch_size % ctx.world_size:
        raise ConfigError(
            f"--batch-size {batch_size} is the global batch and must be divisible by the "
            f"{ctx.world_size} processes"
        )


def shard(ctx: DistContext, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's contiguous slice of rows of each global-batch tensor."""
    out = []
    for t in tensors:
        per = t.shape[0] // ctx.world_size
        out.append(t[ctx.rank * per : (ctx.rank + 1) * per])
    return tuple(out)


def _all_reduce(values: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
    """A reduced copy of `values` (moved to the GPU and back where NCCL needs it)."""
    nccl = dist.get_backend() == "nccl"
    work = values.detach().to(
        torch.device("cuda", torch.cuda.current_device()) if nccl else values.device, copy=True
    )
    dist.all_reduce(work, op=op)
    return work.to(values.device)


def mean_over_ranks(ctx: DistContext, values: torch.Tensor) -> torch.Tensor:
    """The average of a (detached) tensor over ranks; itself for one process."""
    if not ctx.distributed:
        return values.detach()
    return _all_reduce(values, dist.ReduceOp.SUM) / ctx.world_size


def max_over_ranks(ctx: DistContext, values: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over ranks (how ranks agree on time-based decisions)."""
    if not ctx.distributed:
        return values
    return _all_reduce(values, dist.ReduceOp.MAX)


def rate_penalty_term(
    ctx: DistContext, rates: torch.Tensor, target: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(term to add to this rank's loss, value of the global penalty) for the sites' local
    firing rates `rates` [sites]: mean((R - target)^2) with R the rates averaged over ranks.

    The term's value is the global penalty and its gradient, once DDP averages it over ranks,
    is exactly the global penalty's: 2 (R - target) / sites times the averaged d(rates).
    """
    if not ctx.distributed:
        penalty = ((rates - target) ** 2).mean()
        return penalty, penalty.detach()
    global_rates = mean_over_ranks(ctx, rates)
    penalty = ((global_rates - target) ** 2).mean()
    slope = 2.0 * (global_rates - target) / rates.numel()
    return penalty + (slope * (rates - rates.detach())).sum(), penalty


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (e.g. while rank 0 writes a checkpoint)."""
    if ctx.distributed:
        dist.barrier()


def wrap(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """The module to call for training: DDP over `model` when distributed, else `model`."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
