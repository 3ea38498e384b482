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
    """Two short turns of a chat whose readout adapter learns on the CUDA kernels
    (DeviceSynapses), recorded. Small, because the simulator runs every CUDA thread as a
    Python thread: a 16 x 260 readout, 22 rule steps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("trace")
    torch.manual_seed(1234)
    backbone = SpikingLM(small_config(d_model=16, d_ff=16, n_heads=2, n_layers=1)).eval()
    backbone.content_hash = save_model(backbone, root / "model")
    path = root / "chat.zarr"
    with torch.no_grad():
        model = PlasticModel(backbone)
        adapter = model.add_adapter("default", AdapterConfig(rule="rstdp", backend="cuda"))
        assert isinstance(adapter.layers["readout"].synapses, DeviceSynapses)
        with TraceRecorder.attach(model, path, checkpoint_every=1):
            conv = Conversation(model, seed=0)
            for text in ("zorblat hums", "teal"):
                chat_turn(model, conv, text, reply_tokens=1)
    return path


@pytest.mark.parametrize("backend", [None, "cuda"])
def test_replay_reproduces_the_cuda_learning(trace, backend) -> None:
    """The CPU kernels (what a replay of a site that learnt on CUDA runs by default)
    replaying what the adapter learnt on CUDA reach its recorded weights at every
    checkpoint to 1e-6, and so does a replay on the CUDA kernels."""
    result = replay(TraceReader(trace), ReplayOptions(backend=backend, verify=True))
    assert result.steps > 0 and len(result.checkpoint_diffs) > 1
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOL
    on_gpu = {isinstance(s, DeviceSynapses) for s in result.synapses.values()}
    assert on_gpu == {backend == "cuda"}
    moved = max(float(np.max(np.abs(s.weights - s.initial))) for s in result.synapses.values())
    assert moved > 100 * TOL  # learning moved the weights: agreement is not trivial
