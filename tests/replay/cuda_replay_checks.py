"""CPU vs CUDA replay of one recorded trace, run by test_replay_cuda.py in a subprocess.

NUMBA_ENABLE_CUDASIM must be set before numba is first imported, so these checks run in a
pytest subprocess with the simulator enabled (and again without it when a GPU is present).
The file name does not match test_*.py, so plain `pytest` does not collect it directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import cuda

from plastic.models.checkpoint import save_model
from plastic.models.generate import Conversation
from plastic.models.spiking_lm import SpikingLM
from plastic.plasticity import AdapterConfig, PlasticModel
from plastic.plasticity.device_synapses import DeviceSynapses
from plastic.replay import ReplayOptions, TraceReader, replay
from plastic.replay.recorder import TraceRecorder
from tests.conftest import small_config
from tests.plasticity.conftest import chat_turn

if not (cuda.is_available() or getattr(cuda, "simulator", None) is not None):
    pytest.skip("no CUDA device and no simulator", allow_module_level=True)

TOL = 1e-6


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """Two short learning turns of a very small backbone (the simulator runs every CUDA
    thread as a Python thread: the readout site is 16 x 260 synapses, ~30 tokens)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("trace")
    torch.manual_seed(1234)
    backbone = SpikingLM(small_config(d_model=16, d_ff=16, n_heads=2, n_layers=1)).eval()
    backbone.content_hash = save_model(backbone, root / "model")
    path = root / "chat.zarr"
    with torch.no_grad():
        model = PlasticModel(backbone)
        model.add_adapter("default", AdapterConfig(rule="rstdp"))
        with TraceRecorder.attach(model, path, checkpoint_every=1):
            conv = Conversation(model, seed=0)
            for text in ("zorblat hums", "teal zorblat"):
                chat_turn(model, conv, text, reply_tokens=3)
    return path


def test_cuda_replay_agrees_with_the_cpu_kernels(trace) -> None:
    cpu = replay(TraceReader(trace), ReplayOptions(backend="numba", verify=True))
    gpu = replay(TraceReader(trace), ReplayOptions(backend="cuda", verify=True))
    assert all(isinstance(s, DeviceSynapses) for s in gpu.synapses.values())
    assert cpu.steps == gpu.steps > 0
    cpu_w, gpu_w = cpu.weights(), gpu.weights()
    moved = 0.0
    for key, initial in cpu_w.items():
        assert np.max(np.abs(gpu_w[key] - initial)) <= TOL, key
        moved = max(moved, float(np.max(np.abs(initial - cpu.synapses[key].initial))))
    assert moved > 100 * TOL  # learning moved the weights: agreement is not trivial
    # both reproduce every recorded checkpoint of the (CPU) recording
    assert cpu.max_abs_diff == 0.0
    assert gpu.max_abs_diff is not None and gpu.max_abs_diff <= TOL
