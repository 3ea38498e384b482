"""The threaded and serial twins of every CPU row loop (`cpu_threads`) give the same bits.

The kernels run the threaded twin only above PARALLEL_MIN_WORK synapse updates; here each
twin is called directly on small arrays (threads still split the rows), on its own copy of
the same inputs: a race between rows, or twins compiled from different code, would show.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from plastic.kernels_numba import cpu_hebb, cpu_rstdp, cpu_stdp
from plastic.kernels_numba.cpu_events import spike_indices
from plastic.kernels_numba.cpu_threads import SERIAL_SUFFIX, parallel_and_serial
from plastic.rules import get_rule, hebb, rstdp, stdp
from tests.kernels_numba.helpers import spike_trains

N_PRE, N_POST = 37, 29


def arrays(value: Any) -> Iterator[np.ndarray]:
    """Every numpy array in a (nested) tuple of arguments."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from arrays(item)


def assert_twins_agree(twins: tuple[Callable, Callable], *args: Any) -> None:
    """Run each twin on its own deep copy of args; every array must end bit for bit equal."""
    runs = []
    for twin in twins:
        copies = copy.deepcopy(args)
        twin(*copies)
        runs.append(list(arrays(copies)))
    assert len(runs[0]) > 0
    for threaded, serial in zip(*runs, strict=True):
        assert threaded.dtype == serial.dtype
        assert threaded.tobytes() == serial.tobytes()


def warmed(name: str, params: Any, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
    """Weights and state after 40 random steps: traces, deferred LTP and eligibility set."""
    rule = get_rule(name)
    mask = rng.random((N_PRE, N_POST)) < 0.7
    w = rng.uniform(0.2, 0.8, (N_PRE, N_POST)).astype(np.float32)
    state = rule.init_state(N_PRE, N_POST, params, backend="numba", mask=mask)
    rule.step(
        spike_trains(rng, 40, N_PRE, 0.3), spike_trains(rng, 40, N_POST, 0.3), w, state, params
    )
    return w, state


def this_step(timing: Any, rng: np.random.Generator) -> tuple[int, np.ndarray, int]:
    """Spiking-row inputs of a next step: how many pre neurons spike (listed in
    timing.pre_index), the post spikes, and the step number."""
    pre = spike_trains(rng, 1, N_PRE, 0.5)[0].view(np.uint8)
    post = spike_trains(rng, 1, N_POST, 0.5)[0].view(np.uint8)
    return spike_indices(pre, timing.pre_index), post, int(timing.clock[0]) + 1


def test_stdp_twins_agree(rng: np.random.Generator) -> None:
    params = stdp.Params(a_plus=0.05, a_minus=0.06, max_step_update=0.02)
    coef = stdp.kernel_coefficients(params)
    w, timing = warmed("stdp", params, rng)
    count, post, step = this_step(timing, rng)
    twins = (cpu_stdp.spiking_rows_parallel, cpu_stdp.spiking_rows_serial)
    assert_twins_agree(twins, count, w, post, *timing[:-1], step, coef)
    assert_twins_agree((cpu_stdp.sync_parallel, cpu_stdp.sync_serial), w, *timing, coef)
    rows = np.arange(0, N_PRE, 3, dtype=np.int64)
    twins = (cpu_stdp.sync_rows_parallel, cpu_stdp.sync_rows_serial)
    assert_twins_agree(twins, w, rows, *timing, coef)


def test_rstdp_twins_agree(rng: np.random.Generator) -> None:
    params = rstdp.Params(tau_eligibility=10.0, learning_rate=0.5, max_update_norm=0.05)
    coef = rstdp.kernel_coefficients(params)
    w, state = warmed("rstdp", params, rng)
    e, timing = state.eligibility, state.timing
    count, post, step = this_step(timing, rng)
    twins = (cpu_rstdp.spiking_rows_parallel, cpu_rstdp.spiking_rows_serial)
    assert_twins_agree(twins, count, e, w, post, *timing[:-1], step, coef)
    assert_twins_agree((cpu_rstdp.sync_parallel, cpu_rstdp.sync_serial), w, e, *timing, coef)
    twins = (cpu_rstdp.reward_parallel, cpu_rstdp.reward_serial)
    assert_twins_agree(twins, w, e, *timing, state.row_square, coef, 0.7, 0.05)


def test_hebb_twins_agree(rng: np.random.Generator) -> None:
    params = hebb.Params(tau_rate=4.0, learning_rate=0.05)
    w, state = warmed("hebb", params, rng)
    twins = (cpu_hebb.oja_update_parallel, cpu_hebb.oja_update_serial)
    args = (w, state.rate_pre, state.rate_post, state.mask, state.row_square)
    assert_twins_agree(twins, *args, hebb.kernel_coefficients(params))


def _count_up(values: np.ndarray) -> None:
    """A row loop for the twin compiler (never run: the test compiles nothing)."""
    for i in range(values.shape[0]):
        values[i] += i


def test_serial_twin_has_its_own_cache_name() -> None:
    """Numba names cache files after the qualified name, not the `parallel` flag: twins
    sharing one name would load each other's machine code from the cache."""
    threaded, serial = parallel_and_serial(_count_up)
    assert threaded.targetoptions.get("parallel") is True
    assert not serial.targetoptions.get("parallel")
    assert serial.py_func.__code__ is threaded.py_func.__code__  # one loop, written once
    assert serial.py_func.__qualname__ == "_count_up" + SERIAL_SUFFIX
    assert threaded.py_func.__qualname__ == "_count_up"
