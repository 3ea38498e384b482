"""`plastic bench kernels`: synapse updates per second of the learning-rule kernels.

For every rule x N x p: N_pre = N_post = N, Bernoulli pre and post spikes with probability
p per neuron per step (the same spike trains for every implementation), `steps` steps,
float32; rstdp has tau_eligibility = 200 steps and a reward every 10 steps. Reported:

- torch: the dense torch reference ("torch" backend), M synapse updates/s = N^2 steps / s;
- numba: the event-driven Numba CPU kernels ("numba" backend), same unit;
- cuda (with `backends` naming it; needs a GPU): the Numba CUDA kernels ("cuda" backend) on
  device weights, timed up to a device synchronisation, spikes copied over per call as the
  adapters' per-token calls do; cuda/numba is the speed-up over the CPU kernels;
- bound: the dense bandwidth bound, i.e. the machine's memory bandwidth measured in the same
  run (STREAM triad, a[i] = b[i] + s c[i], 12 bytes per element) divided by the 8 bytes a
  dense update must move per synapse (read and write one float32 weight) - no dense update
  can exceed it, so numba/bound > 1 is only possible because the kernels are event-driven.

Each figure is the median of `repeats` timed runs after a warm-up run (compilation, page
faults). Timed: every step and reward plus the final `flush` (deferred work is counted);
not timed: allocating the weights and the state. The dense reference's cost per step does
not depend on the spikes, so it may be timed over the first `torch_steps` steps only.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

RULES = ("stdp", "rstdp")
SIZES = (1024, 4096)
PROBABILITIES = (0.01, 0.03, 0.1)
STEPS = 500
REWARD_EVERY = 10
TAU_ELIGIBILITY = 200.0
BYTES_PER_DENSE_SYNAPSE_UPDATE = 8  # read + write one float32 weight


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to measure; the defaults are the published table."""

    rules: tuple[str, ...] = RULES
    sizes: tuple[int, ...] = SIZES
    probabilities: tuple[float, ...] = PROBABILITIES
    steps: int = STEPS
    torch_steps: int | None = None  # None: as many as `steps`
    backends: tuple[str, ...] = ("numba", "torch")  # "cuda" too where there is a GPU
    repeats: int = 3
    reward_every: int = REWARD_EVERY
    bandwidth_floats: int = 1 << 25  # 3 arrays of 128 MiB: far beyond any cache
    seed: int = 0


@njit(parallel=True, cache=True)
def stream_triad(a, b, c, scalar):
    """a = b + scalar * c (STREAM triad), threads over chunks."""
    for i in prange(a.shape[0]):
        a[i] = b[i] + scalar * c[i]


def measure_bandwidth(n_floats: int, repeats: int) -> dict[str, float]:
    """Memory bandwidth in GB/s (median and best of `repeats` triads after a warm-up)."""
    a = np.zeros(n_floats, np.float32)
    b = np.ones(n_floats, np.float32)
    c = np.full(n_floats, 2.0, np.float32)
    stream_triad(a, b, c, np.float32(0.5))
    seconds = []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        stream_triad(a, b, c, np.float32(0.5))
        seconds.append(time.perf_counter() - start)
    moved = 3 * 4 * n_floats
    return {
        "median_gb_s": moved / statistics.median(seconds) / 1e9,
        "best_gb_s": moved / min(seconds) / 1e9,
    }


def rule_params(name: str) -> Any:
    """Default parameters, with the benchmark's eligibility time constant for rstdp."""
    from plastic.rules import get_rule

    rule = get_rule(name)
    return rule.Params(tau_eligibility=TAU_ELIGIBILITY) if name == "rstdp" else rule.Params()


def timed_run(
    name: str,
    backend: str,
    pre: np.ndarray,
    post: np.ndarray,
    rewards: np.ndarray,
    reward_every: int,
    initial_weights: np.ndarray,
) -> float:
    """Seconds for all steps (in calls of `reward_every` steps), rewards and the final flush."""
    from plastic.rules import get_rule

    rule = get_rule(name)
    params = rule_params(name)
    weights = initial_weights.copy()
    if backend == "torch":
        import torch

        weights = torch.from_numpy(weights)
    elif backend == "cuda":
        from numba import cuda

        weights = cuda.to_device(weights)
    state = rule.init_state(weights.shape[0], weights.shape[1], params, backend=backend)
    start = time.perf_counter()
    for index, first in enumerate(range(0, pre.shape[0], reward_every)):
        last = first + reward_every
        weights, state = rule.step(pre[first:last], post[first:last], weights, state, params)
        if rule.uses_reward:
            weights, state = rule.apply_reward(rewards[index], weights, state, params)
    weights, state = rule.flush(weights, state, params)
    if backend == "cuda":
        cuda.synchronize()  # the kernels are asynchronous: time them to completion
    return time.perf_counter() - start


def bench_case(
    name: str, n: int, probability: float, config: BenchConfig, bound_msyn: float
) -> dict[str, Any]:
    """One table row: each backend's M synapse updates/s on the same spikes."""
    rng = np.random.default_rng([config.seed, n, int(probability * 1e6)])
    pre = rng.random((config.steps, n)) < probability
    post = rng.random((config.steps, n)) < probability
    rewards = rng.standard_normal(config.steps // config.reward_every + 1)
    params = rule_params(name)
    initial = rng.uniform(params.w_min, params.w_max, (n, n)).astype(np.float32)
    torch_steps = min(config.torch_steps or config.steps, config.steps)
    warm = min(config.steps, 2 * config.reward_every)
    row: dict[str, Any] = {
        "rule": name,
        "n": n,
        "p": probability,
        "steps": config.steps,
        "torch_steps": torch_steps if "torch" in config.backends else None,
        "bound_msyn_s": bound_msyn,
    }
    for backend in config.backends:
        steps = torch_steps if backend == "torch" else config.steps
        timed_run(name, backend, pre[:warm], post[:warm], rewards, config.reward_every, initial)
        seconds = [
            timed_run(
                name, backend, pre[:steps], post[:steps], rewards, config.reward_every, initial
            )
            for _ in range(config.repeats)
        ]
        row[f"{backend}_msyn_s"] = n * n * steps / statistics.median(seconds) / 1e6
        row[f"{backend}_seconds"] = seconds
    for fast, slow in (("numba", "torch"), ("cuda", "numba")):
        if f"{fast}_msyn_s" in row and f"{slow}_msyn_s" in row:
            row[f"{fast}_over_{slow}"] = row[f"{fast}_msyn_s"] / row[f"{slow}_msyn_s"]
    if "numba_msyn_s" in row:
        row["numba_over_bound"] = row["numba_msyn_s"] / bound_msyn
    return row


def machine() -> dict[str, Any]:
    """What the numbers were measured on (and how loaded it was)."""
    import numba
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "torch_threads": torch.get_num_threads(),
        "numba": numba.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
    }


def run(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure bandwidth, then every rule x N x p; returns a JSON-able report."""
    say = progress or (lambda message: None)
    started = machine()
    say("measuring memory bandwidth (STREAM triad)")
    bandwidth = measure_bandwidth(config.bandwidth_floats, config.repeats)
    bound = bandwidth["median_gb_s"] * 1e9 / BYTES_PER_DENSE_SYNAPSE_UPDATE / 1e6
    rows = []
    for name in config.rules:
        for n in config.sizes:
            for probability in config.probabilities:
                say(f"{name} N={n} p={probability}")
                rows.append(bench_case(name, n, probability, config, bound))
    return {
        "benchmark": "kernels",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "config": dataclasses.asdict(config),
        "machine": started,
        "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numba_threading_layer_used": threading_layer(),
        "bandwidth": {**bandwidth, "dense_bound_msyn_s": bound},
        "rows": rows,
    }


def threading_layer() -> str:
    """The threading layer numba picked (known once a parallel kernel has run)."""
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return "(none yet)"


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) + ("x" if "_over_" in key else "") if key in row else "-"


# (column, row key, format); columns whose key no row has are left out
_COLUMNS = [
    ("torch M/s", "torch_msyn_s", ",.0f"),
    ("numba M/s", "numba_msyn_s", ",.0f"),
    ("cuda M/s", "cuda_msyn_s", ",.0f"),
    ("numba/torch", "numba_over_torch", ",.1f"),
    ("cuda/numba", "cuda_over_numba", ",.1f"),
    ("bound M/s", "bound_msyn_s", ",.0f"),
    ("numba/bound", "numba_over_bound", ".2f"),
]


def table_columns(report: dict[str, Any]) -> list[str]:
    """The columns of this report's table (cuda ones only when it measured cuda)."""
    present = [c for c, key, _ in _COLUMNS if any(key in row for row in report["rows"])]
    return ["rule", "N", "p", *present]


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """The report's rows as formatted strings, in `table_columns(report)` order."""
    wanted = set(table_columns(report))
    return [
        [row["rule"], str(row["n"]), f"{row['p']:g}"]
        + [_cell(row, key, fmt) for c, key, fmt in _COLUMNS if c in wanted]
        for row in report["rows"]
    ]


def markdown_table(report: dict[str, Any]) -> str:
    """The table as GitHub markdown (for issue notes)."""
    columns = table_columns(report)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(report)]
    return "\n".join(lines)
