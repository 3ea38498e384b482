"""Learning at inference on CUDA: replaying one recorded trace on the CUDA kernels gives the
CPU kernels' weights to 1e-6 - in Numba's CUDA simulator always, on a GPU when present
(skipped, not faked, without one). The checks are in `cuda_replay_checks.py`; they run in
a subprocess because NUMBA_ENABLE_CUDASIM must be set before numba is imported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernels_numba.test_kernels_cuda import gpu_present, run_checks_file

CHECKS = Path(__file__).with_name("cuda_replay_checks.py")


def test_cuda_replay_in_the_simulator() -> None:
    result = run_checks_file(CHECKS, simulate=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def test_cuda_replay_on_the_gpu() -> None:
    if not gpu_present():
        pytest.skip("no CUDA GPU on this machine (the simulator test still ran)")
    result = run_checks_file(CHECKS, simulate=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
