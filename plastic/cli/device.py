"""`--device cpu|cuda`: the one parser of the option for every command that runs a model or
the learning rules (chat, eval, replay, bench adapt, bench chat, bench kernels).

`cuda` needs a GPU that both torch (the backbone) and Numba (the rules' kernels) can use; a
request without one is one line, before any work. Under Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, how the tests check the CUDA kernels without a GPU) the rules run
simulated and the backbone stays on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from plastic.errors import ConfigError

DEVICE_HELP = "cpu, or cuda: the backbone and the adapters' learning rules on the GPU."


@dataclass(frozen=True)
class Device:
    """Where a command runs: the backbone's torch device and the rules' backend."""

    name: str  # "cpu" or "cuda"
    torch_device: str  # "cpu" or "cuda" (cpu under the CUDA simulator)
    rule_backend: str  # "numba" (CPU kernels) or "cuda" (Numba CUDA kernels)
    simulated: bool = False  # the rules' CUDA kernels run in Numba's simulator


def simulator_enabled() -> bool:
    """NUMBA_ENABLE_CUDASIM is set (it must be, before numba is imported, to take effect)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def require_cuda(what: str) -> bool:
    """ConfigError unless Numba's CUDA kernels can run (a GPU, or the simulator); returns
    whether they are simulated."""
    if simulator_enabled():
        return True
    from numba import cuda

    if not cuda.is_available():
        raise ConfigError(f"{what}: no CUDA GPU is visible to numba")
    return False


def parse_device(text: str, what: str = "--device", *, rules: bool = True) -> Device:
    """The Device of `--device TEXT`; a bad name, or cuda without a GPU, is a ConfigError.
    `rules=False`: the command runs no learning rule (training), so only torch needs the GPU."""
    name = (text or "").strip().lower()
    if name == "cpu":
        return Device("cpu", "cpu", "numba")
    if name != "cuda":
        raise ConfigError(f"{what} must be cpu or cuda, not {text!r}")
    simulated = require_cuda(f"{what} cuda") if rules else False
    import torch

    if simulated and not torch.cuda.is_available():
        return Device("cuda", "cpu", "cuda", simulated=True)
    if not torch.cuda.is_available():
        raise ConfigError(f"{what} cuda: no CUDA GPU is visible to torch (use --device cpu)")
    return Device("cuda", "cuda", "cuda", simulated=simulated)


def adapter_settings(device: Device, rule: str | None) -> dict[str, str]:
    """The adapter setting that puts a new adapter's learning on `device`: backend "cuda"
    for the rules with CUDA kernels; the context memory (rule detector_stdp, the chat's
    default, None here) has no CUDA path yet and stays on the CPU kernels."""
    if device.rule_backend != "cuda" or rule in (None, "detector_stdp"):
        return {}
    return {"backend": "cuda"}


def memory_note(device: Device, rule: str | None) -> str | None:
    """What to tell the user when --device cuda leaves the context memory on the CPU."""
    if device.rule_backend == "cuda" and rule in (None, "detector_stdp"):
        return "--device cuda: the backbone runs on the GPU; the context memory learns on the CPU"
    return None
