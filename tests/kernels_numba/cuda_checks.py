"""CUDA kernel checks, run by test_kernels_cuda.py in a subprocess.

NUMBA_ENABLE_CUDASIM must be set before numba is first imported, so these checks cannot
run in the main pytest process; `test_kernels_cuda.py` starts `pytest` on this file with
the simulator enabled (and again without it when a GPU is present). The file name does
not match test_*.py, so plain `pytest` does not collect it directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda

from plastic.kernels_numba import cuda_rstdp, cuda_stdp
from plastic.kernels_numba.arrays import connectivity_mask
from plastic.kernels_numba.state_layout import new_eligibility_state, new_timing_state
from plastic.rules import get_rule
from tests.kernels_numba.helpers import assert_same_run, run_rule, spike_trains

if not (cuda.is_available() or getattr(cuda, "simulator", None) is not None):
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

CASES = {
    "stdp": ("stdp", {"a_plus": 0.05, "a_minus": 0.06}),
    "stdp-multiplicative": ("stdp", {"weight_dependence": "multiplicative", "a_plus": 0.2}),
    "rstdp": ("rstdp", {"tau_eligibility": 6.0, "learning_rate": 0.05, "a_minus": 1.2}),
    "rstdp-capped": ("rstdp", {"learning_rate": 1.0, "max_update_norm": 0.05}),
    "hebb": ("hebb", {"update_interval": 3, "tau_rate": 4.0, "learning_rate": 0.05}),
}
REWARDS = [1.0, -0.5, 2.0, 0.0]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_matches_numba_and_reference(case: str, masked: bool, rng) -> None:
    name, overrides = CASES[case]
    params = get_rule(name).params_from_dict(overrides)
    n_pre, n_post, steps = 5, 7, 24
    setup = {
        "pre": spike_trains(rng, steps, n_pre, 0.3),
        "post": spike_trains(rng, steps, n_post, 0.3),
        "weights": rng.uniform(0.2, 0.8, (n_pre, n_post)).astype(np.float32),
        "mask": (rng.random((n_pre, n_post)) < 0.6) if masked else None,
        "rewards": REWARDS,
        "chunk": 6,
    }
    reference = run_rule(name, params, "torch", **setup)
    on_cpu = run_rule(name, params, "numba", **setup)
    on_gpu = run_rule(name, params, "cuda", to_weights=cuda.to_device, **setup)
    assert_same_run(reference, on_gpu)
    np.testing.assert_array_equal(on_gpu[0], on_cpu[0])  # same math, same order: same bits
    assert np.abs(reference[0] - setup["weights"]).max() > 1e-4


@pytest.mark.parametrize("name", ["stdp", "rstdp"])
def test_cuda_ring_wrap_and_row_flush(name: str, rng) -> None:
    """A 3-step ring forces full syncs on the device; flush(rows) updates only those rows."""
    rule = get_rule(name)
    params = rule.Params(a_plus=0.05) if name == "stdp" else rule.Params(tau_eligibility=5.0)
    coef = rule.kernel_coefficients(params)
    n_pre, n_post, steps = 4, 6, 10
    pre = spike_trains(rng, steps, n_pre, 0.2)
    post = spike_trains(rng, steps, n_post, 0.5)
    w0 = rng.uniform(0.2, 0.8, (n_pre, n_post)).astype(np.float32)
    mask = connectivity_mask(None, n_pre, n_post)
    if name == "stdp":
        state, kernels = cuda_stdp.to_device(new_timing_state(n_pre, n_post, mask, 3)), cuda_stdp
    else:
        state = cuda_rstdp.to_device(new_eligibility_state(n_pre, n_post, mask, 3))
        kernels = cuda_rstdp
    w = cuda.to_device(w0.copy())
    kernels.step(pre, post, w, state, coef)
    reference = run_rule(name, params, "torch", pre, post, w0, chunk=steps)
    if name == "stdp":
        kernels.flush(w, state, coef, rows=np.array([1]))
        np.testing.assert_allclose(w.copy_to_host()[1], reference[0][1], rtol=1e-6)
    kernels.flush(w, state, coef)
    assert_same_run(reference, (w.copy_to_host(), rule.state_to_dict(state)))


def test_cuda_state_round_trip(rng) -> None:
    rule = get_rule("rstdp")
    params = rule.Params(tau_eligibility=9.0)
    w = cuda.to_device(np.zeros((3, 4), np.float32))
    state = rule.init_state(3, 4, params, backend="cuda")
    w, state = rule.step(
        spike_trains(rng, 8, 3, 0.5), spike_trains(rng, 8, 4, 0.5), w, state, params
    )
    w, state = rule.flush(w, state, params)
    saved = rule.state_to_dict(state)
    restored = rule.state_to_dict(rule.state_from_dict(saved, backend="cuda"))
    for key in saved:
        np.testing.assert_array_equal(restored[key], saved[key])


def test_cuda_backend_rejects_host_weights() -> None:
    from plastic.errors import RuleError

    rule = get_rule("stdp")
    params = rule.Params()
    state = rule.init_state(2, 2, params, backend="cuda")
    with pytest.raises(RuleError, match="GPU"):
        rule.step(np.ones(2), np.ones(2), np.zeros((2, 2), np.float32), state, params)


def test_memory_detector_step_matches_the_cpu() -> None:
    """The context memory's learning step: CUDA (one thread per detector) == CPU."""
    from plastic.kernels_numba.cpu_memory import detector_step, read_chunk
    from plastic.kernels_numba.cuda_memory import detectors_step_cuda
    from plastic.kernels_numba.memory_layout import (
        MemoryParams,
        mixer_sets,
        new_reading,
        new_tables,
    )
    from plastic.rules import delta_mixer

    params = MemoryParams(np.array([1, 2, 3], np.int64), 2.0, 0.9, 0.01, 2, 10.0, 0.05, 0.2)
    text = np.frombuffer(b"abracadabra, abracadabra! cadabra", np.uint8).astype(np.int64)
    mixer = delta_mixer.initial_weights(mixer_sets(params), 4, delta_mixer.Params())
    cpu = new_tables(params, 256, 512, mixer)
    read_chunk(
        cpu,
        new_reading(params),
        params,
        text,
        text,
        np.zeros((len(text), 260), np.float32),
        True,
        True,
    )
    gpu = type(cpu)(*(a.copy() for a in cpu))
    detectors = np.arange(int(cpu.sizes[0]), dtype=np.int64)[::2]
    for d in detectors:
        detector_step(cpu, d, 97, params.decay, 1.0)
    detectors_step_cuda(gpu, detectors, 97, params.decay)

    def synapses(tables, d):
        out, p = {}, tables.det_head[d]
        while p >= 0:
            out[int(tables.syn_post[p])] = float(tables.syn_weight[p])
            p = tables.syn_next[p]
        return out

    assert int(gpu.sizes[1]) == int(cpu.sizes[1])
    for d in range(int(cpu.sizes[0])):
        assert synapses(gpu, d) == synapses(cpu, d)
    np.testing.assert_array_equal(gpu.det_trace, cpu.det_trace)
    np.testing.assert_array_equal(gpu.det_fanout, cpu.det_fanout)


def test_bench_kernels_times_the_cuda_backend() -> None:
    from plastic_benchmarks import kernels

    config = kernels.BenchConfig(
        rules=("rstdp",),
        sizes=(8,),
        probabilities=(0.2,),
        steps=10,
        repeats=1,
        backends=("numba", "cuda"),
        bandwidth_floats=1 << 12,
    )
    row = kernels.run(config)["rows"][0]
    assert row["cuda_msyn_s"] > 0 and row["numba_msyn_s"] > 0
    assert row["cuda_over_numba"] == pytest.approx(row["cuda_msyn_s"] / row["numba_msyn_s"])
    assert "torch_msyn_s" not in row
    assert "cuda/numba" in kernels.markdown_table({"rows": [row]})
