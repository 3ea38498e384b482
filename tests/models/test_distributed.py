"""Data-parallel training: 2 gloo processes on CPU compute what one process computes on the
same global batch (loss and weights to 1e-5), and a run resumes exactly under another
number of processes."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from plastic.errors import ConfigError
from plastic.models import distributed
from plastic.models.train import STATE_JSON, TrainConfig, train
from tests.models.conftest import small_train_config

TOL = 1e-5


def config(data: Path, out: Path, steps: int) -> TrainConfig:
    # min_lr_ratio 1: a constant lr after warmup, so a shorter run is a prefix of a longer one
    return small_train_config(data, out, steps, batch_size=4, min_lr_ratio=1.0)


def _rank_main(rank: int, world: int, port: int, cfg: TrainConfig) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    train(cfg)  # leaves the process group itself (distributed.shutdown)
    # What this test checks is on disk now. Skip the interpreter's finalisation, where
    # torch's C++ threads have been seen to abort a rank after its work was done
    # (SIGABRT, "terminate called without an active exception", once in CI).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_processes(cfg: TrainConfig, world: int = 2) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, args=(world, port, cfg), nprocs=world, join=True)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "last" / "model.safetensors"))


def last_loss(out: Path) -> float:
    return json.loads((out / STATE_JSON).read_text())["last_train_bpb"]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= TOL, worst
    assert abs(last_loss(a) - last_loss(b)) <= TOL
    sa, sb = (json.loads((x / STATE_JSON).read_text()) for x in (a, b))
    assert (sa["step"], sa["tokens"]) == (sb["step"], sb["tokens"])


def test_two_gloo_processes_equal_one_process(data: Path, tmp_path: Path) -> None:
    single, double = tmp_path / "single", tmp_path / "double"
    train(config(data, single, steps=5))
    run_processes(config(data, double, steps=5))
    before = InitialWeights(data, tmp_path)
    assert_same_run(single, double)
    # the steps moved the weights much further than the tolerance: the check can fail
    assert before.distance(weights(single)) > 100 * TOL


def test_resume_under_another_number_of_processes(data: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(config(data, straight, steps=5))
    run_processes(config(data, resumed, steps=3))  # 3 steps on 2 processes ...
    train(config(data, resumed, steps=5))  # ... resumed on 1 to step 5
    assert_same_run(straight, resumed)


def test_global_batch_must_split_evenly() -> None:
    ctx = distributed.DistContext(rank=0, world_size=3)
    with pytest.raises(ConfigError, match="divisible by the 3 processes"):
        distributed.check_batch(ctx, 4)
    a, b = torch.arange(12).view(6, 2), torch.arange(6)
    shards = [distributed.shard(distributed.DistContext(r, 3), a, b) for r in range(3)]
    assert torch.equal(torch.cat([s[0] for s in shards]), a)
    assert torch.equal(torch.cat([s[1] for s in shards]), b)


def test_rate_penalty_term_has_the_global_value() -> None:
    rates = torch.tensor([0.1, 0.02], requires_grad=True)
    term, value = distributed.rate_penalty_term(distributed.DistContext(), rates, 0.05)
    assert float(value) == pytest.approx(((0.1 - 0.05) ** 2 + (0.02 - 0.05) ** 2) / 2)
    term.backward()
    assert torch.allclose(rates.grad, torch.tensor([0.05, -0.03]))


class InitialWeights:
    """The initial weights of the runs (step 0), to show how far training moved them."""

    def __init__(self, data: Path, tmp_path: Path) -> None:
        out = tmp_path / "init"
        cfg = config(data, out, steps=1)
        cfg.lr = 0.0  # lr 0: the checkpoint holds the initial weights
        train(cfg)
        self.tensors = weights(out)

    def distance(self, other: dict[str, torch.Tensor]) -> float:
        return max(float((self.tensors[k] - other[k]).abs().max()) for k in self.tensors)
