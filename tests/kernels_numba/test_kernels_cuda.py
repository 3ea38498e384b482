"""The CUDA kernels: checked in numba's CUDA simulator (always) and on a GPU (if present).

NUMBA_ENABLE_CUDASIM only works if set before numba is imported, so the checks in
`cuda_checks.py` run in a pytest subprocess with the variable set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).with_name("cuda_checks.py")


def run_checks(simulate: bool) -> subprocess.CompletedProcess:
    return run_checks_file(CHECKS, simulate)


def run_checks_file(checks: Path, simulate: bool) -> subprocess.CompletedProcess:
    """pytest on `checks` in a subprocess, in Numba's CUDA simulator or on the GPU."""
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulate:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    command = [sys.executable, "-m", "pytest", str(checks), "-q", "-p", "no:cacheprovider", "-x"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def gpu_present() -> bool:
    probe = "from numba import cuda; print(cuda.is_available())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    return result.stdout.strip().endswith("True")


def test_cuda_kernels_in_the_simulator() -> None:
    result = run_checks(simulate=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def test_cuda_kernels_on_the_gpu() -> None:
    if not gpu_present():
        pytest.skip("no CUDA GPU on this machine (the simulator test still ran)")
    result = run_checks(simulate=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
